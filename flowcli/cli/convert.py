"""``flowcli convert IN OUT``: one flow file to another format (by the extensions)."""
from __future__ import annotations

from pathlib import Path

import click

from flowcli.cli.app import pass_app
from flowcli.cli.options import check_distinct, check_output_folder, flow_path_option


@click.command(short_help="Convert a flow file between formats.")
@click.argument("src", type=flow_path_option(), metavar="IN")
@click.argument("dst", type=flow_path_option(), metavar="OUT")
@pass_app
def command(app, src: str, dst: str) -> None:
    """Convert IN to OUT; formats follow the extensions (.flo, .png = KITTI 16-bit, .pfm, .npy, .npz).

    The valid mask travels along where both formats carry one (KITTI PNG, .npz; NaN in .flo/.pfm/.npy).
    KITTI PNG stores 1/64 px steps within +-512 px, so converting into it rounds.
    """
    from flowcli.io import read_flow, write_flow

    if not Path(src).exists():
        raise click.BadParameter(f"{src}: no such file", param_hint="'IN'")
    check_distinct([src], [dst])
    check_output_folder(Path(dst).parent)
    flow, valid = read_flow(src)
    write_flow(dst, flow, valid)
    invalid = int((~valid).sum())
    note = f", {invalid} invalid pixels" if invalid else ""
    app.info(f"{src} -> {dst} ({flow.shape[1]}x{flow.shape[0]}{note})")
