"""flowcli.videoio: streaming frames out of a clip, and its errors."""
from __future__ import annotations


import numpy as np
import pytest

from flowcli.videoio import open_video
from tests.support import H, W, write_clip


def test_open_video_streams_frames(tmp_path):
    clip = write_clip(tmp_path / "c.mp4", n=5, fps=9)
    stream = open_video(clip)
    assert (stream.info.width, stream.info.height, stream.info.fps) == (W, H, 9.0)
    frames = list(stream.frames)
    assert [i for i, _ in frames] == [0, 1, 2, 3, 4]
    assert frames[0][1].shape == (H, W, 3) and frames[0][1].dtype == np.uint8
    sel = open_video(clip, start=1, every=2, frames=2, resize=48)
    got = list(sel.frames)
    assert [i for i, _ in got] == [1, 3] and got[0][1].shape == (32, 48, 3)
    stream = open_video(clip)
    stream.close()  # closing an unread stream ends ffmpeg


def test_open_video_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        open_video(tmp_path / "missing.mp4")
    (tmp_path / "e.mp4").write_bytes(b"")
    with pytest.raises(ValueError, match="e.mp4: empty"):
        open_video(tmp_path / "e.mp4")
    (tmp_path / "x.mp4").write_bytes(b"not a video at all" * 10)
    with pytest.raises(ValueError, match="x.mp4"):
        open_video(tmp_path / "x.mp4")


# ---- what phones record: a variable frame rate, a rotation flag; and what else a "video" may be -------------------
@pytest.mark.parametrize("ext", [".mp4", ".mkv", ".gif"])
def test_variable_frame_rate_gives_each_decoded_frame_once(tmp_path, ext):
    """A clip whose frames are shown for uneven times (a phone's) gives its own frames, each once, in order; a reader
    converting to the constant rate the header states repeats the long-shown frames (30 frames for these 6)."""
    from tests.clips import closest, write_vfr_clip

    codec = ("-c:v", "gif") if ext == ".gif" else ("-c:v", "libx264", "-crf", "12", "-pix_fmt", "yuv420p")
    source = write_vfr_clip(tmp_path / f"vfr{ext}", codec=codec)
    got = list(open_video(tmp_path / f"vfr{ext}").frames)
    assert [i for i, _ in got] == list(range(6))
    matches = [closest(frame, source) for _, frame in got]
    assert [k for k, _ in matches] == list(range(6)), matches
    assert all(err < 20 for _, err in matches), matches  # the frame itself (a GIF's palette costs ~16), not a blend
    # --start/--every/--frames count decoded frames: frames 1, 3, 5 of the six
    picked = list(open_video(tmp_path / f"vfr{ext}", start=1, every=2, frames=3).frames)
    assert [i for i, _ in picked] == [1, 3, 5]
    assert [closest(frame, source)[0] for _, frame in picked] == [1, 3, 5]


def test_rotated_and_resized_clips_are_read_upright_and_quietly(tmp_path, capfd, caplog):
    """A phone held upright stores landscape frames and a rotation flag: frames come out rotated (64x96 from a 96x64
    stream), and without imageio-ffmpeg's warning that the sizes differ (nor for --resize), which a command line
    without logging set up prints on stderr."""
    import logging

    from tests.clips import ffmpeg

    caplog.set_level(logging.DEBUG)
    clip = write_clip(tmp_path / "c.mp4", n=3)
    ffmpeg("-display_rotation", "90", "-i", clip, "-c", "copy", tmp_path / "rot.mp4")
    capfd.readouterr()
    rot = open_video(tmp_path / "rot.mp4")
    frames = list(rot.frames)
    assert (rot.info.width, rot.info.height) == (H, W) and len(frames) == 3 and frames[0][1].shape == (W, H, 3)
    assert (rot.info.source_size) == (W, H)
    small = open_video(clip, resize=48)
    assert len(list(small.frames)) == 3 and (small.info.width, small.info.height) == (48, 32)
    assert capfd.readouterr().err == ""
    assert [r.getMessage() for r in caplog.records if r.name.startswith("imageio")] == []


def test_audio_only_file_is_no_video(tmp_path):
    from tests.clips import ffmpeg

    ffmpeg("-f", "lavfi", "-i", "sine=duration=0.5", "-c:a", "aac", tmp_path / "voice.m4a")
    with pytest.raises(ValueError, match=r"voice\.m4a: no video stream"):
        open_video(tmp_path / "voice.m4a")


def test_the_clip_not_its_preview_picture(tmp_path):
    """A container whose first video stream is a one-frame preview (a cover in MKV, not flagged as one) and whose
    second is the clip: the frames are the clip's, as ffmpeg picks the main stream."""
    from tests.clips import ffmpeg

    clip = write_clip(tmp_path / "c.mp4", n=4)
    cover = tmp_path / "cover.png"
    from flowcli.io import write_image

    write_image(cover, np.zeros((H, W, 3), np.uint8))
    ffmpeg("-i", cover, "-i", clip, "-map", "0", "-map", "1", "-c:v:0", "mjpeg", "-c:v:1", "copy",
           "-disposition:v:1", "default", tmp_path / "with-cover.mkv")
    got = list(open_video(tmp_path / "with-cover.mkv").frames)
    assert len(got) == 4 and all(frame.mean() > 20 for _, frame in got)  # the texture, not the black preview


def test_ten_bit_hevc_is_read(tmp_path):
    """What recent phones record by default (HDR): HEVC in 10 bits, read as 8-bit RGB."""
    from tests.clips import closest, ffmpeg, source_frames
    from flowcli.io import write_image

    frames = source_frames(3)
    for k, f in enumerate(frames):
        write_image(tmp_path / f"{k}.png", f)
    ffmpeg("-framerate", "30", "-i", tmp_path / "%d.png", "-c:v", "libx265", "-x265-params", "log-level=error",
           "-pix_fmt", "yuv420p10le", "-crf", "10", "-tag:v", "hvc1", tmp_path / "hdr.mov")
    got = list(open_video(tmp_path / "hdr.mov").frames)
    assert [closest(f, frames)[0] for _, f in got] == [0, 1, 2]
    assert got[0][1].dtype == np.uint8 and got[0][1].shape == (H, W, 3)


# ---- writing: nothing under the final name unless it decodes to every frame -----------------------------------
def _frames(n, h=H, w=W):
    return [np.full((h, w, 3), 30 * k, np.uint8) for k in range(n)]


@pytest.mark.parametrize("ext", [".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v"])
def test_writer_output_decodes_to_the_frames_written(tmp_path, ext):
    from flowcli.videoio import VideoWriter, count_frames

    with VideoWriter(tmp_path / f"o{ext}", 7.5) as writer:
        for f in _frames(4, 33, 47):  # odd sizes are padded to even ones
            writer.write(f)
    assert count_frames(tmp_path / f"o{ext}") == (4, "")
    stream = open_video(tmp_path / f"o{ext}")
    assert (stream.info.width, stream.info.height, stream.info.fps) == (48, 34, 7.5)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"o{ext}"]


def _full_disk_temp(target):
    """Make the temporary file the writer of ``target`` will use (in this process) a link to /dev/full, where every
    write fails with ENOSPC, as on a full disk: the real kernel error, reached by ffmpeg or by Python."""
    import os

    from flowcli.io.atomic import temp_path

    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full (Linux)")
    tmp = temp_path(target)
    tmp.symlink_to("/dev/full")
    return tmp


def test_writer_on_a_full_disk_raises_naming_the_video(tmp_path, capfd):
    import errno

    from flowcli.videoio import VideoWriter

    out = tmp_path / "flow.mp4"
    _full_disk_temp(out)
    capfd.readouterr()
    with pytest.raises(OSError) as info:
        with VideoWriter(out, 10) as writer:
            for f in _frames(5):
                writer.write(f)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(out)
    assert list(tmp_path.iterdir()) == []  # neither the video nor the temporary file (the link) is left
    assert capfd.readouterr().err == ""  # ffmpeg's own complaint is kept, not printed


def test_writer_checks_the_file_before_renaming(tmp_path, monkeypatch):
    """ffmpeg's exit status alone is not trusted: a file that does not decode to every frame written (here cut to
    half after ffmpeg finished, as when the trailer did not fit) is not renamed into place."""
    from flowcli.videoio import VideoWriter

    original = VideoWriter._verify

    def truncate_then_verify(self):
        data = self._tmp.read_bytes()
        self._tmp.write_bytes(data[:len(data) // 2])
        original(self)

    monkeypatch.setattr(VideoWriter, "_verify", truncate_then_verify)
    out = tmp_path / "flow.mp4"
    writer = VideoWriter(out, 10)
    for f in _frames(5):
        writer.write(f)
    with pytest.raises(OSError) as info:
        writer.close()
    assert info.value.filename == str(out)
    assert info.value.strerror.startswith("the encoded video does not read back (0 of 5 frames; ")
    assert "moov atom not found" in info.value.strerror  # ffmpeg's reason, without its "[in#0 @ 0x...]" prefix
    assert list(tmp_path.iterdir()) == []


def test_writer_refuses_bad_settings_and_frames(tmp_path):
    from flowcli.videoio import VideoWriter

    for fps in (0, -5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="frame rate"):
            VideoWriter(tmp_path / "o.mp4", fps)
    writer = VideoWriter(tmp_path / "o.mp4", 10)
    writer.write(_frames(1)[0])
    with pytest.raises(ValueError, match="differs from the first frame"):
        writer.write(np.zeros((H + 2, W, 3), np.uint8))
    with pytest.raises(ValueError, match="HxWx3"):
        writer.write(np.zeros((H, W), np.uint8))
    writer.abort()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="no frames"):
        VideoWriter(tmp_path / "o.mp4", 10).close()
    assert list(tmp_path.iterdir()) == []


def test_file_names_that_look_like_ffmpeg_protocols(tmp_path, monkeypatch):
    """``concat:gone.mp4`` in the current folder is a file (a clip a user or a tool named oddly), not ffmpeg's concat
    protocol reading gone.mp4; the same for an output named ``out:flow.mp4``."""
    import shutil

    from flowcli.videoio import VideoWriter, count_frames

    monkeypatch.chdir(tmp_path)
    shutil.copy(write_clip(tmp_path / "c.mp4", n=3), tmp_path / "concat:gone.mp4")
    assert len(list(open_video("concat:gone.mp4").frames)) == 3
    with VideoWriter("out:flow.mp4", 5) as writer:
        for f in _frames(2):
            writer.write(f)
    assert count_frames("out:flow.mp4") == (2, "")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.mp4", "concat:gone.mp4", "out:flow.mp4"]
