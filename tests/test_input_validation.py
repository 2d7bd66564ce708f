"""Input validation: each bad input is exit code 2 and one line naming the problem and the fix.

Plugin files, dataset files, archives and factual sets with no rejected point; ``--debug`` shows
the traceback instead (the error is re-raised).
"""

import gzip
import io
import zipfile

import pytest

from recourse_bench import cli, registry
from recourse_bench.api import DataError, RecourseBenchError
from recourse_bench.datasets import _files, _tabular, german
from recourse_bench.datasets._files import DataFile, sha256_of
from recourse_bench.store import read_results

from .conftest import SHARED_DATA, TINY, install_entry_point

PREFIX = "recourse-bench: error: "


def assert_one_line_error(code, err, *expected):
    """Exit code 2, one line on stderr, no traceback, and each expected text in the line."""
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(PREFIX), err
    assert "Traceback" not in err
    for text in expected:
        assert text in lines[0], f"{text!r} not in {lines[0]!r}"
    return lines[0]


# ----------------------------------------------------------------------------------- plugin files
METHOD_HEADER = "from recourse_bench import RecourseMethod, register\n"
PLUGIN_SOURCES = {
    "syntax-error": ("x = 1\ndef oops(:\n    pass\n", ["{path}:2 failed to import: SyntaxError"]),
    "import-error": (
        "import recourse_bench_no_such_module\n",
        ["{path}:1 failed to import: ModuleNotFoundError", "install the package that provides"],
    ),
    "exception": (
        'x = 1\nraise RuntimeError("boom\\nsecond line")\n',
        ["{path}:2 failed to import: RuntimeError: boom; second line", "--debug"],
    ),
    "sys-exit": ("import sys\nsys.exit(3)\n", ["{path}:2 failed to import: SystemExit"]),
    "registers-nothing": ("VALUE = 1\n", ["registers no plugin", "@register(kind, 'name')"]),
    "no-generate": (
        METHOD_HEADER + "@register('method', 'iv-no-generate')\n"
        "class NoGenerate(RecourseMethod):\n"
        "    def fit(self, model, splits):\n"
        "        return self\n",
        ["'iv-no-generate' (NoGenerate in {path}:2)", "does not define generate()"],
    ),
    "method-fit-not-callable": (
        METHOD_HEADER + "@register('method', 'iv-fit-none')\n"
        "class FitNone(RecourseMethod):\n"
        "    fit = None\n"
        "    def generate(self, X):\n"
        "        return X\n",
        ["does not define fit(): a method must implement fit(model, splits) -> self"],
    ),
    "not-a-subclass": (
        "from recourse_bench import register\n"
        "@register('method', 'iv-not-a-subclass')\n"
        "class Loose:\n"
        "    def fit(self, model, splits):\n"
        "        return self\n"
        "    def generate(self, X):\n"
        "        return X\n",
        ["does not subclass recourse_bench.RecourseMethod", "class Loose(RecourseMethod)"],
    ),
    "a-function": (
        "from recourse_bench import register\n"
        "@register('method', 'iv-function')\n"
        "def generate(X):\n"
        "    return X\n",
        ["is a function, not a class"],
    ),
    "model-without-fit": (
        "from recourse_bench import Trainer, register\n"
        "@register('model', 'iv-no-fit')\n"
        "class NoFit(Trainer):\n"
        "    pass\n",
        ["model 'iv-no-fit'", "does not define fit(): a model must implement fit(X, y, seed)"],
    ),
    "dataset-without-load": (
        "from recourse_bench import Dataset, register\n"
        "@register('dataset', 'iv-no-load')\n"
        "class NoLoad(Dataset):\n"
        "    pass\n",
        ["dataset 'iv-no-load'", "does not define load()"],
    ),
    "shift-without-updates": (
        "from recourse_bench.api import Shift\n"
        "from recourse_bench import register\n"
        "@register('shift', 'iv-no-updates')\n"
        "class NoUpdates(Shift):\n"
        "    pass\n",
        ["shift 'iv-no-updates'", "does not define updates()"],
    ),
    "metric-not-a-metric": (
        "from recourse_bench import register\n"
        "register('metric', 'iv-bare-metric')(lambda ctx: 1.0)\n",
        ["is a function, not a Metric", "@metric("],
    ),
    "duplicate-builtin": (
        METHOD_HEADER + "@register('method', 'wachter')\n"
        "class Clash(RecourseMethod):\n"
        "    def generate(self, X):\n"
        "        return X\n",
        ["'wachter' is already registered by recourse_bench.methods.wachter.Wachter", "{path}:2"],
    ),
    "unusable-name": (
        METHOD_HEADER + "@register('method', 'iv bad,name')\n"
        "class BadName(RecourseMethod):\n"
        "    def generate(self, X):\n"
        "        return X\n",
        ["'iv bad,name'", "is not usable"],
    ),
}


def _plugin_path(tmp_path, case):
    """The plugin file of a case: a source above, or a bad path."""
    if case == "missing":
        return tmp_path / "missing.py", ["does not exist"]
    if case == "folder":
        (tmp_path / "plugins.py").mkdir()
        return tmp_path / "plugins.py", ["is a folder", "name the .py file"]
    if case == "not-python":
        path = tmp_path / "plugin.txt"
        path.write_text(PLUGIN_SOURCES["no-generate"][0], encoding="utf-8")
        return path, ["is not a Python file (.py)"]
    source, expected = PLUGIN_SOURCES[case]
    path = tmp_path / f"{case}.py"
    path.write_text(source, encoding="utf-8")
    return path, [text.format(path=path.resolve()) for text in expected]


PLUGIN_CASES = ["missing", "folder", "not-python", *PLUGIN_SOURCES]
COMMANDS = {
    "list": lambda path, config: ["list", "methods", "--plugin", path],
    "check-method": lambda path, config: ["check-method", "--plugin", path],
    "run": lambda path, config: ["run", config, "--plugin", path, "--dry-run"],
}


@pytest.fixture
def tiny_config_file(write_config):
    return write_config(TINY)


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("case", PLUGIN_CASES)
def test_bad_plugin_file_is_one_line_and_exit_2(case, command, tmp_path, run_cli, tiny_config_file):
    before = {kind: set(registry.available(kind)) for kind in registry.KINDS}
    path, expected = _plugin_path(tmp_path, case)
    code, _, err = run_cli(*COMMANDS[command](path, tiny_config_file))
    assert_one_line_error(code, err, *expected)
    assert {kind: set(registry.available(kind)) for kind in registry.KINDS} == before


@pytest.mark.parametrize("case", ["missing", "syntax-error", "exception", "no-generate"])
def test_debug_shows_the_traceback_of_a_bad_plugin(case, tmp_path):
    path, _ = _plugin_path(tmp_path, case)
    with pytest.raises(RecourseBenchError) as info:
        cli.main(["--debug", "list", "--plugin", str(path)])
    cause = {"syntax-error": SyntaxError, "exception": RuntimeError}.get(case)
    if cause is not None:
        assert isinstance(info.value.__cause__, cause)  # the original traceback is chained


def test_a_plugin_file_that_fails_late_leaves_nothing_registered_and_can_be_fixed(tmp_path):
    path = tmp_path / "late.py"
    good = (
        METHOD_HEADER + "@register('method', 'iv-late')\n"
        "class Late(RecourseMethod):\n"
        "    def generate(self, X):\n"
        "        return X\n"
    )
    path.write_text(good + "raise ValueError('late failure')\n", encoding="utf-8")
    with pytest.raises(RecourseBenchError, match=r"late\.py:6 failed to import: ValueError"):
        registry.load_plugin_file(path)
    assert "iv-late" not in registry.available("method")
    path.write_text(good, encoding="utf-8")
    registry.load_plugin_file(path)
    assert registry.get("method", "iv-late").__name__ == "Late"


def test_a_broken_entry_point_is_one_line_naming_the_package(tmp_path, monkeypatch):
    source = "raise ImportError('first line\\nsecond line')\n"
    install_entry_point(tmp_path, "iv_broken_entry", source, "iv-broken")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(RecourseBenchError) as info:
        registry.load_entry_points()
    message = str(info.value)
    assert "\n" not in message and "'iv-broken' (iv_broken_entry)" in message
    assert "ImportError: first line; second line" in message and "uninstall" in message


def test_a_config_cannot_make_recourse_bench_import_a_file(
    tmp_path, run_cli, write_config, monkeypatch
):
    marker = tmp_path / "executed"
    (tmp_path / "evil.py").write_text(f"open({str(marker)!r}, 'w').close()\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("evil", "evil.py", "evil:Evil", str(tmp_path / "evil.py")):
        config = dict(TINY, methods=[name])
        code, _, err = run_cli("run", write_config(config), "--dry-run")
        assert_one_line_error(code, err, "Unknown method")
    code, _, err = run_cli("run", write_config(dict(TINY, plugins=["evil.py"])), "--dry-run")
    assert_one_line_error(code, err, "plugins")
    assert not marker.exists()


# ---------------------------------------------------------------------------------- dataset files
FILE_DATASETS = [
    "compas",
    "gmsc",
    "heloc",
    "sba",
    "student",
    "taiwan",
    "german-corrected",
    "german",
]


def _separator(header: bytes) -> bytes:
    return next((sep for sep in (b";", b",") if sep in header), b" ")


def _damage(content: bytes, kind: str) -> tuple[str, bytes]:
    """A damaged copy of a file: (the name suffix to store it under, the bytes)."""
    lines = content.splitlines(keepends=True)
    sep = _separator(lines[0])
    if kind == "modified-byte":
        return "", content[:500] + bytes([content[500] ^ 0x01]) + content[501:]
    if kind == "truncated-gzip":
        return ".gz", gzip.compress(content, compresslevel=1)[:-64]
    if kind == "empty":
        return "", b""
    if kind == "garbage":
        return "", bytes(range(256)) * 8
    if kind == "empty-cell":  # the first value of the first data row blanked (NaN when parsed)
        _, _, rest = lines[1].partition(sep)
        return "", b"".join([lines[0], (b"NA" if sep == b" " else b"") + sep + rest, *lines[2:]])
    if kind == "renamed-column":
        _, _, rest = lines[0].partition(sep)
        return "", b"".join([b"renamed" + sep + rest, *lines[1:]])
    if kind == "missing-column":
        return "", b"".join(line.rstrip(b"\r\n").rsplit(sep, 1)[0] + b"\n" for line in lines)
    raise AssertionError(kind)


DAMAGE = [
    "modified-byte",
    "truncated-gzip",
    "empty",
    "garbage",
    "empty-cell",
    "renamed-column",
    "missing-column",
]


@pytest.fixture
def damaged_folder(tmp_path, monkeypatch):
    """Point the data folder and the cache at empty folders; forget frames read before."""
    data, cache = tmp_path / "data", tmp_path / "cache"
    data.mkdir()
    monkeypatch.setenv(_files.DATA_ENV, str(data))
    monkeypatch.setenv(_files.CACHE_ENV, str(cache))
    monkeypatch.setattr(_tabular, "_FRAMES", {})

    def offline(*args, **kwargs):
        raise AssertionError("a damaged data folder file must not lead to a download")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    return data


def _reference(file: DataFile) -> bytes:
    source = SHARED_DATA / f"{file.name}.gz"
    if not source.is_file():
        pytest.skip(f"needs the reference {file.name}.gz")
    return gzip.decompress(source.read_bytes())


@pytest.mark.parametrize("damage", DAMAGE)
@pytest.mark.parametrize("name", FILE_DATASETS)
def test_damaged_dataset_file_is_one_data_error_naming_file_and_fix(name, damage, damaged_folder):
    dataset = registry.get("dataset", name)()
    (file,) = [f for f in dataset.files if not f.embedded]
    suffix, payload = _damage(_reference(file), damage)
    (damaged_folder / f"{file.name}{suffix}").write_bytes(payload)
    with pytest.raises(DataError) as info:
        splits = dataset.load(0)
        splits.future_split()  # german reads the corrected file for its future split
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{file.name}: ") and str(damaged_folder) in message
    assert ("cannot read" if damage == "truncated-gzip" else "has sha256") in message
    if file.url:
        assert f"original file from {file.url}" in message
        assert "`recourse-bench data fetch " in message
    else:
        assert f"original file from {file.obtain}" in message


def test_damaged_embedded_file_says_to_reinstall(tmp_path, monkeypatch):
    (tmp_path / "german.data").write_bytes(b"A11 6 A34\n")
    monkeypatch.setattr(_files, "_package_folder", lambda: tmp_path)
    with pytest.raises(DataError, match="installed package is damaged: reinstall recourse-bench"):
        _files.read(german.GERMAN_DATA)


def test_bad_cache_entry_status_says_how_to_download_it_again(tmp_path, monkeypatch):
    monkeypatch.setenv(_files.CACHE_ENV, str(tmp_path))
    monkeypatch.setenv(_files.DATA_ENV, str(tmp_path / "no-data"))
    (tmp_path / "SouthGermanCredit.asc").write_bytes(b"garbage")
    state, path = _files.status(german.SOUTH_GERMAN_CREDIT)
    assert path == tmp_path / "SouthGermanCredit.asc"
    assert "delete it and run `recourse-bench data fetch german` to download it again" in state


@pytest.mark.parametrize("name", ["../x.csv", "/abs.csv", "a/b.csv", "C:\\x.csv", ""])
def test_a_data_file_name_is_a_plain_file_name(name):
    with pytest.raises(DataError, match="plain file name"):
        DataFile(name=name, sha256="0" * 64)


def test_a_pinned_sha256_is_64_hex_digits():
    with pytest.raises(DataError, match="64 lower-case hex digits"):
        DataFile(name="x.csv", sha256="ABC")


def test_damaged_data_file_stops_a_run_with_one_line(
    tmp_path, run_cli, write_config, damaged_folder
):
    (damaged_folder / german.SOUTH_GERMAN_CREDIT.name).write_bytes(b"not the original\n")
    config = dict(TINY, datasets=["german-corrected"], data_dir=str(damaged_folder), seeds=1)
    config["models"] = [{"name": "logreg", "params": {"epochs": 5}}]
    code, _, err = run_cli("run", write_config(config), "--out", tmp_path / "run", "-q")
    assert_one_line_error(
        code, err, "SouthGermanCredit.asc: ", "has sha256", "original file from https://"
    )


# --------------------------------------------------------------------------------------- archives
CONTENT = b"a,b,target\n1,2,1\n3,4,0\n" * 20


def _crafted_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("../evil.csv"), b"evil")
        archive.writestr(zipfile.ZipInfo("/abs.csv"), b"evil")
        archive.writestr("t.csv", CONTENT)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        assert {"../evil.csv", "/abs.csv"} <= set(archive.namelist())  # really crafted
    return buffer.getvalue()


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    cache = tmp_path / "work" / "cache"
    monkeypatch.setenv(_files.CACHE_ENV, str(cache))
    monkeypatch.setenv(_files.DATA_ENV, str(tmp_path / "work" / "no-data"))
    return cache


def test_an_archive_with_unsafe_members_writes_only_the_verified_file(serve, empty_cache):
    url = serve.add("/crafted.zip", _crafted_zip())
    file = DataFile(name="t.csv", sha256=sha256_of(CONTENT), url=url, members=("t.csv",))
    assert _files.read(file) == CONTENT
    work = empty_cache.parent
    written = sorted(str(p.relative_to(work.parent)) for p in work.parent.rglob("*"))
    assert written == ["work", "work/cache", "work/cache/t.csv"]


@pytest.mark.parametrize("member", ["../evil.csv", "/abs.csv", "..\\evil.csv", "C:/abs.csv"])
def test_unsafe_archive_member_paths_are_refused_before_any_download(member, serve, empty_cache):
    url = serve.add("/crafted.zip", _crafted_zip())
    file = DataFile(name="t.csv", sha256=sha256_of(CONTENT), url=url, members=(member,))
    with pytest.raises(DataError, match="refusing the archive member path"):
        _files.fetch(file)
    assert serve.requests == [] and not empty_cache.exists()
    with pytest.raises(DataError, match="refusing the archive member path"):
        _files._extract(_crafted_zip(), (member,), "t.csv")


# ------------------------------------------------------------------------ no factual to explain
def test_a_model_that_rejects_no_test_point_gives_skipped_rows_and_the_matrix_runs(
    tmp_path, run_cli, write_config
):
    config = dict(
        TINY,
        seeds=1,
        n_factuals=5,
        datasets=["german"],  # 70 % favourable: a prior-only model accepts everybody
        models=["logreg", {"name": "boosting", "params": {"max_iter": 1, "learning_rate": 1e-6}}],
        methods=["nearest-neighbour"],
        shifts=[{"name": "retrain-seed", "params": {"n_models": 1}}],
    )
    code, _, err = run_cli("run", write_config(config), "--out", tmp_path / "run", "-q")
    assert code == 0, err
    results = read_results(tmp_path / "run")
    boosting = results[results["model"] == "boosting"]
    assert (boosting["status"] == "skipped").all() and len(boosting)
    assert boosting["reason"].str.contains("rejects no test point of german").all()
    assert (results[results["model"] == "logreg"]["status"] == "ok").all()


def test_each_damage_changes_the_file():
    content = _reference(german.SOUTH_GERMAN_CREDIT)
    for kind in DAMAGE:
        suffix, payload = _damage(content, kind)
        assert payload != content and (suffix == ".gz") == (kind == "truncated-gzip"), kind
