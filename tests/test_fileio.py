"""AsyncFile, open_file, wrap_file and the async Path."""

from __future__ import annotations

import io
import os
import pathlib
import stat
import sys

import pytest

import anyio
from anyio import AsyncFile, CancelScope, CapacityLimiter, Path, open_file, wrap_file

pytestmark = pytest.mark.anyio


@pytest.fixture
def sample(tmp_path: pathlib.Path) -> pathlib.Path:
    target = tmp_path / "sample.bin"
    target.write_bytes(bytes(range(256)) * 4)
    return target


class TestAsyncFile:
    async def test_read_all_and_close(self, sample: pathlib.Path) -> None:
        async with await open_file(sample, "rb") as fp:
            assert isinstance(fp, AsyncFile)
            assert await fp.read() == sample.read_bytes()
            assert not fp.closed

        assert fp.closed

    async def test_partial_reads_seek_and_tell(self, sample: pathlib.Path) -> None:
        async with await open_file(sample, "rb") as fp:
            assert await fp.read(3) == b"\x00\x01\x02"
            assert await fp.tell() == 3
            assert await fp.seek(-2, os.SEEK_END) == 1022
            assert await fp.read1() == b"\xfe\xff"

    async def test_readinto_variants(self, sample: pathlib.Path) -> None:
        async with await open_file(sample, "rb") as fp:
            first = bytearray(4)
            assert await fp.readinto(first) == 4
            second = bytearray(4)
            assert await fp.readinto1(second) == 4

        assert bytes(first + second) == bytes(range(8))

    async def test_text_lines(self, tmp_path: pathlib.Path) -> None:
        target = tmp_path / "lines.txt"
        target.write_text("one\ntwo\nthree")
        async with await open_file(target) as fp:
            assert await fp.readline() == "one\n"
            assert await fp.readlines() == ["two\n", "three"]

        async with await open_file(target) as fp:
            assert [line async for line in fp] == ["one\n", "two\n", "three"]

    async def test_write_writelines_truncate_flush(
        self, tmp_path: pathlib.Path
    ) -> None:
        target = tmp_path / "out.txt"
        async with await open_file(target, "w+", encoding="utf-8") as fp:
            assert await fp.write("héllo ") == 6
            await fp.writelines(["wor", "ld"])
            await fp.flush()
            assert target.read_text(encoding="utf-8") == "héllo world"
            assert await fp.truncate(5) == 5

        assert target.read_text(encoding="utf-8") == "héll"

    async def test_attributes_come_from_the_wrapped_file(
        self, sample: pathlib.Path
    ) -> None:
        async with await open_file(sample, "rb", buffering=0) as fp:
            assert fp.name == str(sample)
            assert fp.mode == "rb"
            assert isinstance(fp.wrapped, io.FileIO)
            with pytest.raises(AttributeError):
                fp.no_such_attribute  # noqa: B018

    async def test_limiter_is_kept(self, sample: pathlib.Path) -> None:
        limiter = CapacityLimiter(2)
        fp = await open_file(sample, "rb", limiter=limiter)
        assert fp.limiter is limiter
        assert await fp.read(1) == b"\x00"
        await fp.aclose()
        default = await open_file(sample, "rb")
        assert default.limiter is None
        await default.aclose()

    async def test_open_errors_are_the_builtin_ones(
        self, tmp_path: pathlib.Path
    ) -> None:
        with pytest.raises(FileNotFoundError):
            await open_file(tmp_path / "missing" / "file")

        with pytest.raises(ValueError, match="invalid mode"):
            await open_file(tmp_path / "x", "rz")

    async def test_use_after_close(self, sample: pathlib.Path) -> None:
        fp = await open_file(sample, "rb")
        await fp.aclose()
        await fp.aclose()  # closing twice is harmless
        with pytest.raises(ValueError):
            await fp.read()

    async def test_aclose_in_cancelled_scope_still_closes(
        self, tmp_path: pathlib.Path
    ) -> None:
        fp = await open_file(tmp_path / "f", "wb")
        with CancelScope() as scope:
            scope.cancel()
            await fp.aclose()

        assert fp.closed

    async def test_read_in_cancelled_scope_is_cancelled(
        self, sample: pathlib.Path
    ) -> None:
        async with await open_file(sample, "rb") as fp:
            with CancelScope() as scope:
                scope.cancel()
                await fp.read(1)

            assert scope.cancelled_caught
            assert await fp.tell() == 0

    async def test_wrap_file(self) -> None:
        limiter = CapacityLimiter(1)
        wrapped = wrap_file(io.StringIO("a\nb\n"), limiter=limiter)
        assert wrapped.limiter is limiter
        assert [line async for line in wrapped] == ["a\n", "b\n"]
        await wrapped.aclose()
        assert wrapped.wrapped.closed


class TestPurePath:
    def test_construction_and_text_forms(self) -> None:
        path = Path("/usr", "lib", pathlib.PurePosixPath("x.tar.gz"))
        assert str(path) == os.fspath(path) == "/usr/lib/x.tar.gz"
        assert bytes(path) == b"/usr/lib/x.tar.gz"
        assert repr(path) == "Path('/usr/lib/x.tar.gz')"
        assert repr(Path()) == "Path('.')"
        assert path.as_posix() == "/usr/lib/x.tar.gz"
        assert path.as_uri() == "file:///usr/lib/x.tar.gz"

    def test_parts_and_names(self) -> None:
        path = Path("/usr/lib/x.tar.gz")
        assert path.parts == ("/", "usr", "lib", "x.tar.gz")
        assert (path.drive, path.root, path.anchor) == ("", "/", "/")
        assert (path.name, path.stem, path.suffix) == ("x.tar.gz", "x.tar", ".gz")
        assert path.suffixes == [".tar", ".gz"]

    def test_derived_paths_keep_type_and_limiter(self) -> None:
        limiter = CapacityLimiter(1)
        path = Path("/a/b/c.txt", limiter=limiter)
        derived = [
            path.parent,
            *path.parents,
            path / "d",
            "/z" / Path("rel", limiter=limiter),
            path.joinpath("e", "f"),
            path.with_name("n.txt"),
            path.with_stem("s"),
            path.with_suffix(".md"),
            path.with_segments("/q", "r"),
            path.relative_to("/a"),
        ]
        for item in derived:
            assert type(item) is Path
            assert item.limiter is limiter

        assert [str(p) for p in path.parents] == ["/a/b", "/a", "/"]
        assert path.with_stem("s") == Path("/a/b/s.txt")
        assert path.relative_to("/a") == Path("b/c.txt")

    def test_subclass_is_preserved(self) -> None:
        class MyPath(Path):
            pass

        assert type(MyPath("/x") / "y") is MyPath
        assert type("x" / MyPath("y")) is MyPath
        assert repr(MyPath("/x")) == "MyPath('/x')"

    def test_limiter_is_not_inherited_from_an_argument(self) -> None:
        original = Path("/x", limiter=CapacityLimiter(1))
        assert Path(original).limiter is None

    def test_equality_hash_and_ordering(self) -> None:
        assert Path("/a") == Path("/a")
        assert Path("/a") == pathlib.Path("/a")
        assert pathlib.Path("/a") == Path("/a")
        assert Path("/a") != "/a"
        assert hash(Path("/a")) == hash(pathlib.Path("/a"))
        assert Path("/a") < Path("/b") <= pathlib.Path("/b")
        assert Path("/c") > pathlib.Path("/b")
        assert Path("/c") >= Path("/c")
        with pytest.raises(TypeError):
            Path("/a") < "/b"  # noqa: B015
        assert sorted([Path("/b"), Path("/a")]) == [Path("/a"), Path("/b")]

    def test_bad_operands(self) -> None:
        with pytest.raises(TypeError):
            Path(1)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            Path("/a") / 1  # type: ignore[operator]
        with pytest.raises(TypeError):
            1 / Path("/a")  # type: ignore[operator]

    def test_queries(self) -> None:
        path = Path("/a/b/c.py")
        assert path.is_absolute()
        assert not Path("a").is_absolute()
        assert path.is_relative_to("/a")
        assert not path.is_relative_to("/x")
        assert path.match("*.py")
        assert not path.match("*.txt")
        with pytest.raises(ValueError):
            path.relative_to("/x")

    def test_with_stem_refuses_an_empty_stem_with_a_suffix(self) -> None:
        with pytest.raises(ValueError, match="non-empty suffix"):
            Path("/a/b.txt").with_stem("")

    def test_every_public_pathlib_name_exists(self) -> None:
        ignored = {"link_to", "__enter__", "__exit__", "__class_getitem__"}
        ours = set(dir(Path("/x")))
        missing = {
            name
            for name in dir(pathlib.Path("/x"))
            if (name.startswith("__") or not name.startswith("_"))
            and name not in ignored
            and not name.startswith("__open_")
            and name != "__firstlineno__"
        } - ours
        assert not missing


class TestPathIO:
    async def test_write_and_read(self, tmp_path: pathlib.Path) -> None:
        path = Path(tmp_path) / "f.txt"
        assert await path.write_text("åäö\n", encoding="utf-8") == 4
        assert await path.read_text(encoding="utf-8") == "åäö\n"
        assert await path.write_bytes(memoryview(b"raw")) == 3
        assert await path.read_bytes() == b"raw"

    async def test_open_gives_async_file(self, tmp_path: pathlib.Path) -> None:
        limiter = CapacityLimiter(3)
        path = Path(tmp_path, limiter=limiter) / "f.bin"
        async with await path.open("wb") as fp:
            assert isinstance(fp, AsyncFile)
            assert fp.limiter is limiter
            await fp.write(b"xyz")

        assert (tmp_path / "f.bin").read_bytes() == b"xyz"

    async def test_type_checks(self, tmp_path: pathlib.Path) -> None:
        base = Path(tmp_path)
        await (base / "file").touch()
        await (base / "dir").mkdir()
        await (base / "link").symlink_to(base / "file")
        assert await (base / "file").exists()
        assert not await (base / "nothing").exists()
        assert await (base / "file").is_file()
        assert await (base / "dir").is_dir()
        assert await (base / "link").is_symlink()
        assert not await (base / "file").is_symlink()
        assert not await (base / "file").is_fifo()
        assert not await (base / "file").is_socket()
        assert not await (base / "file").is_block_device()
        assert await Path("/dev/null").is_char_device()
        assert await Path("/").is_mount()
        assert not await (base / "dir").is_mount()

    async def test_stat_and_ownership(self, tmp_path: pathlib.Path) -> None:
        import grp
        import pwd

        path = Path(tmp_path) / "f"
        await path.write_bytes(b"12345")
        assert (await path.stat()).st_size == 5
        link = Path(tmp_path) / "link"
        await link.symlink_to("f")
        assert stat.S_ISLNK((await link.lstat()).st_mode)
        assert not stat.S_ISLNK((await link.stat()).st_mode)
        assert await path.owner() == pwd.getpwuid(os.geteuid()).pw_name
        assert await path.group() == grp.getgrgid(os.getegid()).gr_name
        await path.chmod(0o600)
        assert (await path.stat()).st_mode & 0o777 == 0o600

    async def test_mkdir_rmdir_unlink(self, tmp_path: pathlib.Path) -> None:
        nested = Path(tmp_path) / "a" / "b"
        with pytest.raises(FileNotFoundError):
            await nested.mkdir()

        await nested.mkdir(parents=True)
        await nested.mkdir(exist_ok=True)
        with pytest.raises(FileExistsError):
            await nested.mkdir()

        await nested.rmdir()
        assert not (tmp_path / "a" / "b").exists()
        file = Path(tmp_path) / "f"
        await file.touch()
        await file.unlink()
        await file.unlink(missing_ok=True)
        with pytest.raises(FileNotFoundError):
            await file.unlink()

    async def test_rename_replace_and_links(self, tmp_path: pathlib.Path) -> None:
        limiter = CapacityLimiter(1)
        src = Path(tmp_path, limiter=limiter) / "src"
        await src.write_text("data")
        moved = await src.rename(Path(tmp_path) / "moved")
        assert moved == tmp_path / "moved"
        assert moved.limiter is limiter
        (tmp_path / "other").write_text("old")
        replaced = await moved.replace(tmp_path / "other")
        assert await replaced.read_text() == "data"
        hard = Path(tmp_path) / "hard"
        await hard.hardlink_to(replaced)
        assert await hard.samefile(replaced)
        soft = Path(tmp_path, limiter=limiter) / "soft"
        await soft.symlink_to("other")
        target = await soft.readlink()
        assert target == Path("other")
        assert target.limiter is limiter
        assert await soft.resolve() == tmp_path.resolve() / "other"

    async def test_constructors_from_the_os(self) -> None:
        limiter = CapacityLimiter(1)
        cwd = await Path.cwd(limiter=limiter)
        assert cwd == pathlib.Path.cwd()
        assert cwd.limiter is limiter
        home = await Path.home()
        assert home == pathlib.Path.home()
        assert await Path("rel").absolute() == pathlib.Path.cwd() / "rel"
        assert await Path("~").expanduser() == pathlib.Path.home()

    async def test_listing(self, tmp_path: pathlib.Path) -> None:
        (tmp_path / "sub").mkdir()
        for name in ("a.txt", "b.log", "sub/c.txt"):
            (tmp_path / name).touch()

        limiter = CapacityLimiter(2)
        base = Path(tmp_path, limiter=limiter)
        listed = [entry async for entry in base.iterdir()]
        assert sorted(entry.name for entry in listed) == ["a.txt", "b.log", "sub"]
        assert all(type(e) is Path and e.limiter is limiter for e in listed)
        globbed = sorted([p.relative_to(base) async for p in base.glob("*.txt")])
        assert globbed == [Path("a.txt")]
        deep = sorted([p.relative_to(base) async for p in base.rglob("*.txt")])
        assert deep == [Path("a.txt"), Path("sub/c.txt")]
        assert [p async for p in (base / "sub").glob("*.none")] == []

    async def test_iterdir_of_missing_directory(self, tmp_path: pathlib.Path) -> None:
        with pytest.raises(FileNotFoundError):
            async for _ in Path(tmp_path / "missing").iterdir():
                pass

    @pytest.mark.skipif(sys.version_info < (3, 12), reason="Path.walk() needs 3.12")
    async def test_walk(self, tmp_path: pathlib.Path) -> None:
        (tmp_path / "d").mkdir()
        (tmp_path / "d" / "f").touch()
        steps = [step async for step in Path(tmp_path).walk()]
        assert steps == [(Path(tmp_path), ["d"], []), (Path(tmp_path) / "d", [], ["f"])]

    async def test_io_in_cancelled_scope_does_nothing(
        self, tmp_path: pathlib.Path
    ) -> None:
        path = Path(tmp_path) / "never"
        with CancelScope() as scope:
            scope.cancel()
            await path.touch()

        assert scope.cancelled_caught
        assert not await path.exists()

    async def test_limiter_bounds_concurrency(self, tmp_path: pathlib.Path) -> None:
        limiter = CapacityLimiter(1)
        base = Path(tmp_path, limiter=limiter)
        async with anyio.create_task_group() as tg:
            for index in range(5):
                tg.start_soon((base / f"f{index}").write_text, str(index))

        assert sorted(p.name for p in tmp_path.iterdir()) == [f"f{i}" for i in range(5)]
        assert limiter.borrowed_tokens == 0
