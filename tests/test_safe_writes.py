"""Writes stay inside the output folder, follow no planted link, and leave nothing half-written.

Faults are simulated: a full disk by writers that put part of their bytes down and then raise
``OSError(ENOSPC)``, a read-only folder by refusing every file opened for writing below it (the tests run
as root in CI images, where a real ``chmod`` does not stop a write; `test_real_read_only_folder` does it for
real where it can).
"""

from __future__ import annotations

import builtins
import errno
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from facerep.apps import export
from facerep.common import safe_write
from facerep.common.errors import WriteError
from facerep.common.safe_write import TEMP_SUFFIX, all_or_nothing, inside, output_folder, write_atomic
from facerep.data import objfile
from facerep.geometry import mesh_io

TRIANGLE = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
FACES = np.array([[0, 1, 2]])


class _FaceModel:
    """What `export.write_meshes` reads from a face model: triangles and UVs."""

    triangles = FACES
    uv = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _disk_full_after(fraction: float = 0.5) -> Any:
    """A `safe_write._temp_file` replacement whose file takes part of the first large write, then fails."""

    class _FullDisk(io.RawIOBase):
        def __init__(self, fd: int) -> None:
            self.real = os.fdopen(fd, "wb")

        def writable(self) -> bool:
            return True

        def write(self, data: Any) -> int:
            data = bytes(data)
            self.real.write(data[: int(len(data) * fraction)])
            self.real.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def close(self) -> None:
            self.real.close()
            super().close()

    return _FullDisk


# -- inside: names cannot choose a place outside the folder ------------------------------------------------


@pytest.mark.parametrize("name", ["..", "../x.obj", "a/../../x.obj", "/etc/x.obj", ".", ""])
def test_inside_refuses_names_that_leave_the_folder(tmp_path: Path, name: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(WriteError, match="outside the output folder"):
        inside(out, name)


def test_inside_accepts_plain_and_nested_names(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    assert inside(out, "a.obj") == out.resolve() / "a.obj"
    assert inside(out, "sub", "b.png") == out.resolve() / "sub" / "b.png"
    assert inside(out, "sub/../c.png") == out.resolve() / "c.png"
    assert inside(out, "..png") == out.resolve() / "..png"  # a name, not a parent


def test_inside_refuses_a_subfolder_that_links_out(tmp_path: Path) -> None:
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "photo").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(WriteError, match="outside"):
        inside(out, "photo", "mesh.obj")


def test_write_meshes_refuses_a_stem_outside_its_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(WriteError, match="outside the output folder"):
        export.write_meshes(out, "../escaped", TRIANGLE, _FaceModel(), np.ones((3, 3)))
    assert not (tmp_path / "escaped.obj").exists() and not (tmp_path / "escaped.ply").exists()


# -- planted symlinks ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".obj", ".ply"])
def test_mesh_writers_do_not_follow_a_planted_temp_link(tmp_path: Path, suffix: str) -> None:
    """The old writers wrote ``NAME.tmp`` and so overwrote whatever a link of that name pointed to."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / f"mesh{suffix}.tmp").symlink_to(victim)
    mesh_io.write_mesh(out / f"mesh{suffix}", TRIANGLE, FACES)
    assert victim.read_text() == "precious\n"
    assert np.allclose(mesh_io.read_mesh(out / f"mesh{suffix}").vertices, TRIANGLE, atol=1e-6)


def test_image_writer_replaces_a_planted_link_instead_of_writing_through_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim.png"
    victim.write_bytes(b"precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / "render.png").symlink_to(victim)
    export.save_image(out / "render.png", np.zeros((4, 4, 3)))
    assert victim.read_bytes() == b"precious"
    assert not (out / "render.png").is_symlink()
    with Image.open(out / "render.png") as im:
        assert im.size == (4, 4)


def test_written_files_get_ordinary_permissions(tmp_path: Path) -> None:
    """`mkstemp` creates 0600 files; a result file is readable like any other (0666 less the umask)."""
    path = write_atomic(tmp_path / "a.bin", lambda fh: fh.write(b"x"))
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


# -- a full disk -------------------------------------------------------------------------------------------


def test_full_disk_keeps_the_previous_file_and_leaves_no_temp(tmp_path: Path, monkeypatch: Any) -> None:
    path = tmp_path / "mesh.obj"
    mesh_io.write_obj(path, TRIANGLE, FACES)
    before = path.read_bytes()
    monkeypatch.setattr(safe_write, "_temp_file", _disk_full_after(0.5))
    with pytest.raises(WriteError) as caught:
        mesh_io.write_obj(path, TRIANGLE * 2, FACES)
    assert str(caught.value) == f"{path}: cannot write (No space left on device)"
    assert path.read_bytes() == before
    assert _listing(tmp_path) == ["mesh.obj"]


def test_full_disk_in_a_textured_obj_writes_none_of_its_three_files(tmp_path: Path, monkeypatch: Any) -> None:
    calls = {"n": 0}
    real = safe_write._temp_file

    def third_fails(fd: int) -> Any:  # texture and MTL go through, the OBJ itself hits the full disk
        calls["n"] += 1
        return _disk_full_after(0.3)(fd) if calls["n"] == 3 else real(fd)

    monkeypatch.setattr(safe_write, "_temp_file", third_fails)
    out = tmp_path / "out"
    with pytest.raises(WriteError, match="No space left"):
        mesh_io.write_obj(out / "face.obj", TRIANGLE, FACES, uv=_FaceModel.uv, texture=np.zeros((8, 8, 3)))
    assert calls["n"] == 3
    assert not out.exists()  # created for these files, removed again with them


def test_full_disk_mid_npz_in_write_meshes_and_images(tmp_path: Path, monkeypatch: Any) -> None:
    """A batch of writes (meshes, images, arrays) that fails half-way leaves the folder as it was."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    real_savez = np.savez

    def savez_full_disk(file: Any, **arrays: Any) -> None:
        buffer = io.BytesIO()
        real_savez(buffer, **arrays)
        data = buffer.getvalue()
        if hasattr(file, "write"):  # the new writers hand a file object over
            file.write(data[: len(data) // 2])
            file.flush()
        else:  # the old ones a path
            Path(file).write_bytes(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "savez", savez_full_disk)
    with (
        pytest.raises(WriteError, match=r"codes\.npz: cannot write \(No space left on device\)"),
        all_or_nothing(),
    ):
        export.write_meshes(out, "canonical", TRIANGLE, _FaceModel(), np.ones((3, 3)), np.zeros((8, 8, 3)))
        export.save_image(out / "render.png", np.zeros((4, 4, 3)))
        export.save_npz(out / "codes.npz", {"pose": np.zeros(6)})
    assert _listing(out) == ["keep.txt"]


def test_an_interrupted_writer_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("old")

    def interrupted(fh: Any) -> None:
        fh.write(b"new, but only ha")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(path, interrupted)
    assert path.read_text() == "old" and _listing(tmp_path) == ["a.txt"]


def test_objfile_writer_is_atomic(tmp_path: Path, monkeypatch: Any) -> None:
    path = tmp_path / "scan.obj"
    objfile.write_obj(path, TRIANGLE, FACES)
    monkeypatch.setattr(safe_write, "_temp_file", _disk_full_after(0.5))
    with pytest.raises(WriteError, match="No space left"):
        objfile.write_obj(path, TRIANGLE * 3, FACES)
    assert np.allclose(objfile.read_obj(path)[0], TRIANGLE) and _listing(tmp_path) == ["scan.obj"]


# -- read-only folders -------------------------------------------------------------------------------------


def _refuse_writes_below(monkeypatch: Any, folder: Path) -> None:
    """Every file opened for writing below `folder` fails as on a read-only folder (even for root)."""
    folder = folder.resolve()

    def below(path: Any) -> bool:
        try:
            return Path(os.fsdecode(path)).resolve().is_relative_to(folder)
        except (TypeError, ValueError):
            return False

    def refuse(path: Any) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(path))

    real_os_open, real_open, real_mkdir = os.open, builtins.open, os.mkdir

    def os_open(path: Any, flags: int, *args: Any, **kw: Any) -> int:
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and below(path):
            refuse(path)
        return real_os_open(path, flags, *args, **kw)

    def open_(file: Any, mode: str = "r", *args: Any, **kw: Any) -> Any:
        if isinstance(file, (str, bytes, os.PathLike)) and set(mode) & set("wax+") and below(file):
            refuse(file)
        return real_open(file, mode, *args, **kw)

    def mkdir(path: Any, *args: Any, **kw: Any) -> None:
        if below(path):
            refuse(path)
        real_mkdir(path, *args, **kw)

    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(builtins, "open", open_)
    monkeypatch.setattr(io, "open", open_)


def test_read_only_folder_is_one_write_error(tmp_path: Path, monkeypatch: Any) -> None:
    out = tmp_path / "out"
    out.mkdir()
    _refuse_writes_below(monkeypatch, out)
    with pytest.raises(WriteError) as caught:
        export.write_meshes(out, "canonical", TRIANGLE, _FaceModel(), np.ones((3, 3)))
    assert str(caught.value) == f"{out.resolve() / 'canonical.obj'}: cannot write (Permission denied)"
    assert _listing(out) == []


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a user that chmod can stop")
def test_real_read_only_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    try:
        with pytest.raises(WriteError, match="Permission denied"):
            export.save_image(out / "a.png", np.zeros((2, 2, 3)))
        with pytest.raises(WriteError, match="cannot create the output folder"):
            output_folder(out / "sub")
    finally:
        out.chmod(0o755)


def test_output_folder_over_a_file_is_a_write_error(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("x")
    with pytest.raises(WriteError, match="taken: cannot create the output folder"):
        output_folder(tmp_path / "taken")


# -- stale temporary files ----------------------------------------------------------------------------------


def test_output_folder_removes_temps_of_dead_writers_only(tmp_path: Path) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(gone.stdout)
    stale = tmp_path / f".mesh.obj.{dead_pid}.abcd1234{TEMP_SUFFIX}"
    ours = tmp_path / f".mesh.ply.{os.getpid()}.efgh5678{TEMP_SUFFIX}"
    user_files = [tmp_path / "mesh.obj.tmp", tmp_path / "notes.facerep-part"]
    for path in (stale, ours, *user_files):
        path.write_text("x")
    output_folder(tmp_path)
    assert not stale.exists()
    assert ours.exists() and all(p.exists() for p in user_files)


# -- the transfer command: one line, exit 2, nothing left -------------------------------------------------


@pytest.fixture(scope="module")
def two_photos() -> list[Path]:
    from facerep.data.photos import find_photos
    from facerep.world.cache import ensure_world

    world = ensure_world("tiny", 0, progress=False)
    return find_photos(world / "celeba" / "img_align_celeba")[:2]


def _transfer_fails(capsys: Any, run: Path, photos: list[Path], out: Path, *extra: str) -> str:
    from facerep.cli.app import main

    argv = ["transfer", str(photos[0]), str(photos[1]), "--run", str(run), "--out", str(out), *extra]
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()  # a "device: ..." line may come first
    assert [line for line in lines if line.startswith("error:")] == lines[-1:], lines
    assert "Traceback" not in "\n".join(lines)
    return lines[-1]


def test_transfer_on_a_full_disk(
    tiny_trained_run: Path, two_photos: list[Path], tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    real_savez = np.savez

    def savez_full_disk(file: Any, **arrays: Any) -> None:  # codes.npz is the last file transfer writes
        buffer = io.BytesIO()
        real_savez(buffer, **arrays)
        data = buffer.getvalue()[:100]
        if hasattr(file, "write"):
            file.write(data)
        else:
            Path(file).write_bytes(data)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "savez", savez_full_disk)
    out = tmp_path / "out"
    line = _transfer_fails(capsys, tiny_trained_run, two_photos, out)
    assert line == f"error: {out.resolve() / 'codes.npz'}: cannot write (No space left on device)"
    assert not out.exists()  # made for the transfer, removed with its files


def test_transfer_into_a_read_only_folder(
    tiny_trained_run: Path, two_photos: list[Path], tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    _refuse_writes_below(monkeypatch, out)
    line = _transfer_fails(capsys, tiny_trained_run, two_photos, out)
    assert line.startswith(f"error: {out.resolve()}/") and line.endswith(": cannot write (Permission denied)")
    assert _listing(out) == []
    grid = _transfer_fails(capsys, tiny_trained_run, two_photos, out / "grid", "--grid", "2")
    assert grid == f"error: {out / 'grid'}: cannot create the output folder (Permission denied)"


def test_long_names_and_concurrent_writers(tmp_path: Path) -> None:
    """A 250-character name still gets a temporary file (its name is shortened); two threads writing one
    file leave one whole version of it, never a mix."""
    import threading

    long_name = "n" * 246 + ".obj"
    write_atomic(tmp_path / long_name, lambda fh: fh.write(b"x"))
    assert (tmp_path / long_name).read_bytes() == b"x"
    versions = [bytes([65 + k]) * 2_000_000 for k in range(2)]

    def write(k: int) -> None:
        for _ in range(3):
            write_atomic(tmp_path / "shared.bin", lambda fh: fh.write(versions[k]))

    threads = [threading.Thread(target=write, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (tmp_path / "shared.bin").read_bytes() in versions
    assert _listing(tmp_path) == sorted([long_name, "shared.bin"])
