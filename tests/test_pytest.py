"""The pytest plugin (mandala_ast/pytest.py): real pytest runs, each in its own subprocess, over
one project and its storage file, as a user runs pytest again and again."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HELPERS = '''
def normalize(xs):
    return [x / 10 for x in xs]
'''

# Each body appends its name to computed.txt: the file says what ran, whatever pytest prints.
CONFTEST = '''
from pathlib import Path

from helpers import normalize
from mandala_ast.pytest import cached_fixture


def mark(name):
    with open(Path(__file__).parent / "computed.txt", "a") as log:
        log.write(name + "\\n")


@cached_fixture(scope="session")
def dataset():
    mark("dataset")
    return list(range(10))


@cached_fixture(scope="session")
def trained_model(dataset):
    mark("trained_model")
    return sum(normalize(dataset))
'''

TESTS = '''
def test_model(trained_model):
    assert trained_model == 4.5
'''


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(helpers=HELPERS, conftest=CONFTEST, test_model=TESTS)
    return pytester


def run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, list[str]]:
    """One pytest run in a fresh interpreter; returns its result and the fixtures it computed."""
    log = pytester.path / "computed.txt"
    log.unlink(missing_ok=True)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
    computed = log.read_text().split() if log.exists() else []
    return result, computed


def summary(result: pytest.RunResult) -> str:
    lines = [line for line in result.outlines if re.match(r"mandala: \d", line)]
    assert len(lines) == 1, result.stdout.str()
    return lines[0]


def edit(pytester: pytest.Pytester, name: str, old: str, new: str) -> None:
    path = pytester.path / name
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_cached_fixture_computes_once_over_two_runs(project):
    first, computed = run(project)
    first.assert_outcomes(passed=1)
    assert computed == ["dataset", "trained_model"]
    assert summary(first) == (
        "mandala: 2 fixtures computed (dataset: not stored yet, trained_model: not stored yet)"
    )
    second, computed = run(project)
    second.assert_outcomes(passed=1)
    assert computed == []
    assert re.fullmatch(r"mandala: 2 fixtures reused \(saved \d+\.\d s\)", summary(second))


def test_editing_a_helper_recomputes_and_the_summary_names_it(project):
    run(project)
    edit(project, "helpers.py", "x / 10", "x / 10.0")
    result, computed = run(project)
    result.assert_outcomes(passed=1)
    assert computed == ["trained_model"]  # dataset never called normalize
    assert "1 recomputed (trained_model: helper normalize changed)" in summary(result)


def test_editing_the_fixture_recomputes(project):
    run(project)
    edit(project, "conftest.py", "return sum(normalize(dataset))", "return 0.0 + sum(normalize(dataset))")
    result, computed = run(project)
    assert computed == ["trained_model"]
    assert "1 recomputed (trained_model: fixture code changed)" in summary(result)


def test_cosmetic_edit_reuses(project):
    run(project)
    edit(project, "conftest.py", 'mark("trained_model")', 'mark("trained_model")  # a comment\n\n')
    edit(project, "helpers.py", "def normalize(xs):", "def normalize(xs):\n    '''Scale.'''")
    result, computed = run(project)
    assert computed == []
    assert "2 fixtures reused" in summary(result)


def test_refresh_recomputes_every_cached_fixture(project):
    run(project)
    result, computed = run(project, "--mandala-refresh")
    assert computed == ["dataset", "trained_model"]
    assert summary(result).startswith("mandala: 2 fixtures recomputed (dataset: refresh requested")
    _, computed = run(project)
    assert computed == []


def test_refresh_with_a_name_recomputes_only_that_fixture(project):
    run(project)
    result, computed = run(project, "--mandala-refresh=trained_model")
    assert computed == ["trained_model"]
    assert "1 recomputed (trained_model: refresh requested)" in summary(result)


def test_no_mandala_cache_runs_plain_fixtures_and_stores_nothing(project):
    for _ in range(2):
        result, computed = run(project, "--no-mandala-cache")
        result.assert_outcomes(passed=1)
        assert computed == ["dataset", "trained_model"]
        assert "mandala:" not in result.stdout.str()
    assert not (project.path / ".mandala").exists()


def test_a_changed_param_is_a_new_key(pytester):
    pytester.makepyfile(
        conftest=CONFTEST.split("@cached_fixture")[0]
        + textwrap.dedent('''
            @cached_fixture(params=[1, 2])
            def sized(request):
                mark(f"sized{request.param}")
                return [0] * request.param
        '''),
        helpers=HELPERS,
        test_sized="def test_sized(sized):\n    assert len(sized) in (1, 2, 3)\n",
    )
    _, computed = run(pytester)
    assert computed == ["sized1", "sized2"]
    edit(pytester, "conftest.py", "params=[1, 2]", "params=[1, 3]")
    result, computed = run(pytester, "-v")
    assert computed == ["sized3"]
    assert "mandala: sized[1] reused" in result.stdout.str()


def test_pytest_fixture_arguments_pass_through(pytester):
    pytester.makepyfile(
        conftest=CONFTEST.split("@cached_fixture")[0]
        + textwrap.dedent('''
            @cached_fixture(name="answer", params=[41], ids=["forty-one"], autouse=True, scope="module")
            def make_answer(request):
                mark("answer")
                return request.param + 1
        '''),
        helpers=HELPERS,
        test_answer="def test_answer(request):\n    assert request.getfixturevalue('answer') == 42\n",
    )
    for expected in (["answer"], []):
        result, computed = run(pytester, "-v")
        result.assert_outcomes(passed=1)
        assert computed == expected
        result.stdout.fnmatch_lines(["*test_answer[[]forty-one[]] PASSED*"])


def test_a_changed_received_fixture_value_is_a_new_key(project):
    project.makepyfile(
        conftest=CONFTEST.replace("@cached_fixture(scope=\"session\")\ndef dataset", "@pytest.fixture(scope=\"session\")\ndef dataset")
        .replace("from pathlib import Path", "from pathlib import Path\nimport pytest")
    )
    _, computed = run(project)
    assert computed == ["dataset", "trained_model"]
    _, computed = run(project)
    assert computed == ["dataset"]  # a plain fixture runs every time; its value is unchanged
    edit(project, "conftest.py", "range(10)", "range(20)")
    project.makepyfile(test_model="def test_model(trained_model):\n    assert trained_model > 18\n")
    result, computed = run(project)
    result.assert_outcomes(passed=1)
    assert computed == ["dataset", "trained_model"]
    assert "trained_model: not stored yet" in summary(result)


def test_two_xdist_workers_share_the_storage_and_compute_a_session_fixture_once(project):
    pytest.importorskip("xdist")
    edit(project, "conftest.py", 'mark("dataset")', 'mark("dataset")\n    import time; time.sleep(1)')
    project.makepyfile(
        test_model="\n".join(f"def test_{i}(trained_model):\n    assert trained_model == 4.5\n" for i in range(8))
    )
    result, computed = run(project, "-n", "2", "-v")
    result.assert_outcomes(passed=8)
    assert sorted(computed) == ["dataset", "trained_model"]
    assert {"[gw0]", "[gw1]"} <= set(re.findall(r"\[gw\d\]", result.stdout.str()))
    assert summary(result).startswith("mandala: ")
    _, computed = run(project, "-n", "2")
    assert computed == []


def test_a_generator_fixture_is_an_error_at_collection(pytester):
    pytester.makeconftest(
        "from mandala_ast.pytest import cached_fixture\n"
        "@cached_fixture\n"
        "def connection():\n"
        "    yield 1\n"
    )
    pytester.makepyfile("def test_x(connection):\n    pass\n")
    result, _ = run(pytester)
    assert result.ret != 0
    output = result.stdout.str() + result.stderr.str()  # a conftest error is printed on stderr
    assert "FixtureError: cached_fixture 'connection' is a generator (yield) fixture" in output
    assert "yield it from an ordinary @pytest.fixture that receives 'connection'" in output


def test_a_cached_fixture_method_is_an_error_at_collection(pytester):
    pytester.makepyfile(
        "from mandala_ast.pytest import cached_fixture\n"
        "class TestModel:\n"
        "    @cached_fixture\n"
        "    def model(self):\n"
        "        return 1\n"
        "    def test_x(self, model):\n"
        "        pass\n"
    )
    result, _ = run(pytester)
    assert result.ret != 0
    assert "cached_fixture 'model' is defined in class TestModel: define it at module level" in result.stdout.str()


def test_ignore_naming_a_fixture_not_received_is_an_error_at_collection(pytester):
    pytester.makeconftest(
        "from mandala_ast.pytest import cached_fixture\n"
        "@cached_fixture(ignore=('tmp_path_factory',))\n"
        "def model():\n"
        "    return 1\n"
    )
    pytester.makepyfile("def test_x(model):\n    pass\n")
    result, _ = run(pytester)
    assert result.ret != 0
    assert "cached_fixture 'model': ignore= names fixtures it does not receive: ['tmp_path_factory']" in (
        result.stdout.str() + result.stderr.str()
    )


def test_with_the_plugin_disabled_cached_fixtures_are_plain(project):
    for _ in range(2):
        result, computed = run(project, "-p", "no:mandala_ast")
        result.assert_outcomes(passed=1)
        assert computed == ["dataset", "trained_model"]


def test_a_refresh_name_no_fixture_has_is_reported(project):
    run(project)
    result, computed = run(project, "--mandala-refresh", "test_model.py")
    result.assert_outcomes(passed=1)
    assert computed == []
    output = " ".join(result.outlines)
    assert "--mandala-refresh named 'test_model.py', but no cached fixture of that name was used" in output


def test_storage_path_from_the_command_line_and_from_the_ini_file(project):
    run(project, "--mandala-storage", "elsewhere/fixtures.db")
    assert (project.path / "elsewhere" / "fixtures.db").exists()
    assert not (project.path / ".mandala").exists()
    project.makeini("[pytest]\nmandala_storage = from_ini.db\n")
    _, computed = run(project)
    assert computed == ["dataset", "trained_model"]
    assert (project.path / "from_ini.db").exists()


def test_default_storage_is_ignored_by_git(project):
    run(project)
    assert (project.path / ".mandala" / "pytest.db").exists()
    assert (project.path / ".mandala" / ".gitignore").read_text().splitlines()[-1] == "*"


def test_mandala_storage_fixture_is_a_fresh_storage_per_test(pytester):
    pytester.makepyfile(
        '''
        from mandala_ast import op

        @op
        def inc(x):
            return x + 1

        def test_one(mandala_storage):
            with mandala_storage.run():
                assert inc(1) == 2
            assert len(mandala_storage.df(inc)) == 1

        def test_two(mandala_storage):
            assert len(mandala_storage.df(inc)) == 0
        '''
    )
    result, _ = run(pytester)
    result.assert_outcomes(passed=2)


QUERYING_PACKAGE = """
from mandala_ast import Q, op


@op
def inc(x):
    return x + 1


def stored_results(storage):
    with storage.run():
        for i in range(3):
            inc(i)
    with storage.query() as q:
        x = Q()
        y = inc(x)
    return sorted(q.df("y")["y"])
"""


def test_mandala_packages_are_compiled_before_conftests_load(pytester):
    pytester.makepyfile(**{"mypkg/__init__": "", "mypkg/flows": QUERYING_PACKAGE})
    pytester.makeconftest("import mypkg.flows\n")  # imported before any test module
    pytester.makeini("[pytest]\nmandala_packages = mypkg\n")
    pytester.makepyfile(
        "import mypkg.flows\n"
        "def test_query_block_in_the_package(mandala_storage):\n"
        "    assert mypkg.flows.stored_results(mandala_storage) == [1, 2, 3]\n"
    )
    result, _ = run(pytester)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["mandala: import hook on mypkg"])
    pytester.makeini("[pytest]\n")
    result, _ = run(pytester)  # without the hook the query block is not compiled: an error
    result.assert_outcomes(failed=1)
    assert "QueryError" in result.stdout.str()


def test_a_run_without_cached_fixtures_loads_no_runtime(pytester):
    pytester.makepyfile(
        "import sys\n"
        "def test_light():\n"
        "    loaded = [m for m in sys.modules if m.startswith(('mandala_ast.runtime', 'pandas', 'numpy', 'libcst'))]\n"
        "    assert loaded == []\n"
        "    assert 'mandala_ast.pytest' in sys.modules\n"
    )
    result, _ = run(pytester)
    result.assert_outcomes(passed=1)
    assert "mandala:" not in result.stdout.str()


def test_readme_example_runs(pytester):
    """The README's cached-fixture example, as written, computes once and then reuses."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("## Cached test fixtures")[1].split("\n## ")[0]
    for block in re.findall(r"```python\n(.*?)```", section, re.S):
        first, _, body = block.partition("\n")
        if first.startswith("# ") and first.endswith(".py"):
            (pytester.path / first[2:]).write_text(body)
    first, _ = run(pytester)
    first.assert_outcomes(passed=2)
    assert "computed" in summary(first)
    second, _ = run(pytester)
    second.assert_outcomes(passed=2)
    assert "reused" in summary(second) and "computed" not in summary(second)


def test_a_changed_data_file_recomputes_and_the_summary_names_the_file(pytester):
    # The summary took the last dotted part of "file /path/data.txt": "helper txt changed".
    pytester.makepyfile(
        conftest=(
            "from pathlib import Path\nfrom mandala_ast.pytest import cached_fixture\n\n"
            "@cached_fixture\ndef numbers():\n"
            "    return [int(x) for x in (Path(__file__).parent / 'data.txt').read_text().split()]\n"
        ),
        test_numbers="def test_numbers(numbers):\n    assert len(numbers) in (3, 4)\n",
    )
    (pytester.path / "data.txt").write_text("1 2 3")
    run(pytester)
    (pytester.path / "data.txt").write_text("1 2 3 4")
    result, _ = run(pytester)
    result.assert_outcomes(passed=1)
    assert summary(result) == "mandala: 1 fixture recomputed (numbers: file data.txt changed)"


def test_editing_a_fixture_fetched_with_getfixturevalue_recomputes(pytester):
    # The body receives `request`, through which it runs user code; only request.param is
    # keyed, and a body given nothing but plain data was not traced: the edit went unseen.
    pytester.makepyfile(
        conftest=(
            "import pytest\nfrom mandala_ast.pytest import cached_fixture\n\n"
            "@pytest.fixture\ndef base():\n    return 5\n\n"
            "@cached_fixture\ndef doubled(request):\n    return request.getfixturevalue('base') * 2\n"
        ),
        test_doubled="def test_doubled(doubled):\n    assert doubled in (10, 12)\n    print('DOUBLED', doubled)\n",
    )
    run(pytester)
    edit(pytester, "conftest.py", "return 5", "return 6")
    result, _ = run(pytester, "-s")
    assert "DOUBLED 12" in result.stdout.str()
    assert summary(result) == "mandala: 1 fixture recomputed (doubled: helper base changed)"


def test_refreshing_a_fixture_recomputes_the_cached_fixtures_that_received_it(pytester):
    # A refresh is asked for when the value changed upstream without any code, file or
    # variable the plugin sees (a download): here the process id. The fixture that received
    # it is keyed on its stored call, whose identity a refresh keeps: it was loaded as
    # computed from the old value, in that run and every later one.
    pytester.makepyfile(
        conftest=(
            "import os\nfrom mandala_ast.pytest import cached_fixture\n\n"
            "@cached_fixture(scope='session')\ndef download():\n    return os.getpid()\n\n"
            "@cached_fixture(scope='session')\ndef model(download):\n    return download * 100\n"
        ),
        test_model="def test_model(model, download):\n    assert model == download * 100\n",
    )
    run(pytester)
    refreshed, _ = run(pytester, "--mandala-refresh=download")
    refreshed.assert_outcomes(passed=1)
    again, _ = run(pytester)
    again.assert_outcomes(passed=1)


ROOT_CONFTEST_WITH_HELPER = '''
from mandala_ast.pytest import cached_fixture

SCALE = 10


def norm(xs):
    return [x * SCALE for x in xs]


@cached_fixture(scope="session")
def data():
    return norm([1, 2])
'''


@pytest.mark.parametrize("mode", ["prepend", "importlib"])
def test_editing_a_root_conftest_helper_recomputes_with_a_conftest_in_a_subdirectory(pytester, mode):
    # pytest imports every conftest.py outside a package as the module "conftest" (prepend
    # mode), and the last one imported shadows the others in sys.modules; it removes
    # sys.modules["conftest"] before importing another conftest.py in importlib mode too.
    # The root's helper was looked up in unit/conftest.py or nowhere, never recorded, and
    # its edit served a stale value.
    pytester.makepyfile(conftest=ROOT_CONFTEST_WITH_HELPER)
    pytester.mkdir("unit")
    (pytester.path / "unit" / "conftest.py").write_text("import pytest\n\n\n@pytest.fixture\ndef other():\n    return 1\n")
    (pytester.path / "unit" / "test_data.py").write_text(
        "def test_data(data, other):\n    print('DATA', data)\n"
    )
    run(pytester, f"--import-mode={mode}")
    edit(pytester, "conftest.py", "x * SCALE", "x * SCALE + 1")
    result, _ = run(pytester, "-s", f"--import-mode={mode}")
    assert "DATA [11, 21]" in result.stdout.str()
    assert summary(result) == "mandala: 1 fixture recomputed (data: helper norm changed)"


def test_same_named_fixtures_of_two_conftests_keep_their_own_values(pytester):
    # Both conftest.py files were the module "conftest": one op, one key for both fixtures,
    # and the second directory's tests got the first directory's value.
    conftest = (
        "from pathlib import Path\nfrom mandala_ast.pytest import cached_fixture\n\n\n"
        "@cached_fixture(scope='session')\n"
        "def config():\n    return (Path(__file__).parent / 'config.txt').read_text()\n"
    )
    for name in ("a", "b"):
        pytester.mkdir(name)
        (pytester.path / name / "conftest.py").write_text(conftest)
        (pytester.path / name / "config.txt").write_text(f"config of {name}")
        (pytester.path / name / f"test_{name}.py").write_text(
            f"def test_{name}(config):\n    assert config == 'config of {name}'\n"
        )
    for _ in range(2):
        result, _ = run(pytester)
        result.assert_outcomes(passed=2)
    assert summary(result) == "mandala: 2 fixtures reused (saved 0.0 s)"


TEMP_DIR_FIXTURE = '''
from mandala_ast.pytest import cached_fixture


@cached_fixture(scope="session", ignore=("tmp_path_factory",))
def data_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("data")
    (directory / "x.csv").write_text("1,2")
    return {"dir": str(directory)}
'''


def test_a_path_into_pytests_temporary_directory_is_never_cached(pytester):
    # pytest removes the temporary directory of a run a few runs later (at once with
    # --basetemp): the value stored, a path into it, was loaded by later runs and pointed to
    # files that were gone (FileNotFoundError in a test, three runs after the first).
    pytester.makepyfile(
        conftest=TEMP_DIR_FIXTURE,
        test_data="from pathlib import Path\n\ndef test_data(data_dir):\n    assert (Path(data_dir['dir']) / 'x.csv').exists()\n",
    )
    for _ in range(2):
        result, _ = run(pytester, "--basetemp", str(pytester.path / "temporary"))
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(
            ["*FixtureError: cached_fixture 'data_dir' returned a path in pytest's temporary directory*"]
        )
    assert "an ordinary @pytest.fixture that receives it" in result.stdout.str()
    assert "mandala: 1 fixture computed" in result.stdout.str()  # not stored: computed again


def test_a_cached_fixture_reading_the_tests_marker_is_an_error_not_another_tests_value(pytester):
    # Only request.param is keyed: the value the first test's marker chose was loaded for
    # every later test, whatever its marker said (test_seven got 5 items).
    pytester.makepyfile(
        conftest=(
            "from mandala_ast.pytest import cached_fixture\n\n"
            "@cached_fixture\ndef dataset(request):\n"
            "    return list(range(request.node.get_closest_marker('size').args[0]))\n"
        ),
        test_sizes=(
            "import pytest\n\n"
            "@pytest.mark.size(5)\ndef test_five(dataset):\n    assert len(dataset) == 5\n\n"
            "@pytest.mark.size(7)\ndef test_seven(dataset):\n    assert len(dataset) == 7\n"
        ),
    )
    pytester.makeini("[pytest]\nmarkers = size\n")
    for _ in range(2):
        result, _ = run(pytester)
        result.assert_outcomes(errors=2)
        result.stdout.fnmatch_lines(["*FixtureError: cached_fixture 'dataset' read request.node, which differs from test to test*"])
    assert "give the choices as params=" in result.stdout.str()


def test_a_cached_fixture_reading_a_command_line_option_is_an_error_not_the_last_runs_value(pytester):
    # Options are not part of the key: `pytest --size=7` loaded the list `--size=5` made.
    pytester.makepyfile(
        conftest=(
            "from mandala_ast.pytest import cached_fixture\n\n"
            "def pytest_addoption(parser):\n    parser.addoption('--size', type=int, default=5)\n\n"
            "@cached_fixture\ndef dataset(request):\n    return list(range(request.config.getoption('size')))\n"
        ),
        test_size="def test_size(dataset, request):\n    assert len(dataset) == request.config.getoption('size')\n",
    )
    for size in ("5", "7"):
        result, _ = run(pytester, f"--size={size}")
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*FixtureError: cached_fixture 'dataset' read request.config.getoption('size')*"])
    assert "Receive a plain @pytest.fixture that returns the option instead" in result.stdout.str()


PATCHING_SETTINGS = {"settings": "SCALE = 1\n", "test_scale": "import settings\n\ndef test_scale(scaled):\n    assert settings.SCALE == 10\n"}


def test_a_cached_fixture_taking_monkeypatch_is_an_error_at_collection_not_a_test_run_unpatched(pytester):
    # The body patched settings.SCALE; a later run loaded its value without running the
    # body, so the test saw SCALE unpatched (assert 1 == 10), though pytest's own fixture
    # patches for every test.
    pytester.makepyfile(
        conftest=(
            "import settings\nfrom mandala_ast.pytest import cached_fixture\n\n"
            "@cached_fixture\ndef scaled(monkeypatch):\n"
            "    monkeypatch.setattr(settings, 'SCALE', 10)\n    return 5\n"
        ),
        **PATCHING_SETTINGS,
    )
    for _ in range(2):
        result, _ = run(pytester)
        assert result.ret != 0
        output = result.stdout.str() + result.stderr.str()  # a conftest error is printed on stderr
        assert "FixtureError: cached_fixture 'scaled' receives monkeypatch" in output
        assert "assert 1 == 10" not in output
    assert "Patch in an ordinary @pytest.fixture" in output


def test_a_cached_fixture_fetching_monkeypatch_is_an_error_at_setup_not_a_test_run_unpatched(pytester):
    pytester.makepyfile(
        conftest=(
            "import settings\nfrom mandala_ast.pytest import cached_fixture\n\n"
            "@cached_fixture\ndef scaled(request):\n"
            "    request.getfixturevalue('monkeypatch').setattr(settings, 'SCALE', 10)\n    return 5\n"
        ),
        **PATCHING_SETTINGS,
    )
    for _ in range(2):
        result, _ = run(pytester)
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*FixtureError: cached_fixture 'scaled' fetched monkeypatch*"])
    assert "Patch in an ordinary @pytest.fixture" in result.stdout.str()


def test_a_cached_fixture_receiving_a_fixture_that_patches_sees_the_patch_and_is_keyed_on_it(pytester):
    # What the errors above advise: an ordinary fixture patches for every test, and the
    # cached fixture that reads the patched attribute is keyed on its value.
    pytester.makepyfile(
        conftest=(
            "import pytest, settings\nfrom mandala_ast.pytest import cached_fixture\n\n"
            "@pytest.fixture\ndef patched(monkeypatch):\n    monkeypatch.setattr(settings, 'SCALE', 10)\n\n"
            "@cached_fixture\ndef scaled(patched):\n    return settings.SCALE * 2\n"
        ),
        settings="SCALE = 1\n",
        test_scale="import settings\n\ndef test_scale(scaled):\n    assert settings.SCALE == 10 and scaled == 20\n",
    )
    for expected in ("computed", "reused"):
        result, _ = run(pytester)
        result.assert_outcomes(passed=1)
        assert f"mandala: 1 fixture {expected}" in summary(result)
    edit(pytester, "conftest.py", "'SCALE', 10", "'SCALE', 7")
    edit(pytester, "test_scale.py", "== 10 and scaled == 20", "== 7 and scaled == 14")
    result, _ = run(pytester)
    result.assert_outcomes(passed=1)
    assert "1 fixture recomputed (scaled: helper SCALE changed)" in summary(result)


def test_a_cached_fixture_whose_params_carry_marks_sets_up_under_strict_markers(pytester):
    # Reading the fixture's dependencies asked pytest.mark (in its decorator) for an attribute
    # `fn`: pytest.mark makes a mark of any name, so every test using the fixture failed at
    # setup with "'fn' not found in `markers` configuration option" under --strict-markers,
    # and warned "Unknown pytest.mark.fn" without it.
    pytester.makepyfile(
        conftest=(
            "import pytest\nfrom mandala_ast.pytest import cached_fixture\n\n"
            "@cached_fixture(params=[1, pytest.param(1000, marks=pytest.mark.slow)])\n"
            "def sized(request):\n    return [0] * request.param\n"
        ),
        test_sized="def test_sized(sized):\n    assert len(sized) in (1, 1000)\n",
    )
    pytester.makeini("[pytest]\nmarkers =\n    slow: a slow test\n")
    for options in (["--strict-markers"], ["-W", "error::pytest.PytestUnknownMarkWarning"], []):
        result, _ = run(pytester, *options)
        result.assert_outcomes(passed=2)
        assert "Unknown pytest.mark" not in result.stdout.str()


def test_a_cached_fixture_keyed_on_tmp_path_is_an_error_at_collection_not_a_value_stored_for_every_test(pytester):
    # tmp_path is a new directory for every test: a key holding it never matched again, so
    # each test of each run computed the value and stored one more copy, never loaded.
    pytester.makepyfile(
        conftest=(
            "from mandala_ast.pytest import cached_fixture\n\n"
            "@cached_fixture\ndef table(tmp_path):\n"
            "    (tmp_path / 'rows.csv').write_text('a,b')\n"
            "    return (tmp_path / 'rows.csv').read_text()\n"
        ),
        test_table="def test_table(table):\n    assert table == 'a,b'\n",
    )
    result, _ = run(pytester)
    assert result.ret != 0
    output = result.stdout.str() + result.stderr.str()  # a conftest error is printed on stderr
    assert "FixtureError: cached_fixture 'table' receives tmp_path, a new directory for every test" in output
    assert "ignore=('tmp_path',)" in output
    edit(pytester, "conftest.py", "@cached_fixture\n", "@cached_fixture(ignore=('tmp_path',))\n")
    for expected in ("computed", "reused"):
        result, _ = run(pytester)
        result.assert_outcomes(passed=1)
        assert f"mandala: 1 fixture {expected}" in summary(result)


def test_a_fixture_recomputed_because_an_upstream_cached_fixture_changed_names_that_fixture(project):
    # trained_model is keyed on dataset's stored call: recomputed after dataset's code
    # changed, its reason was "not stored yet", as if it had never run.
    run(project)
    edit(project, "conftest.py", "return list(range(10))", "return list(range(20))")
    project.makepyfile(test_model="def test_model(trained_model):\n    assert round(trained_model, 6) == 19.0\n")
    result, computed = run(project)
    result.assert_outcomes(passed=1)
    assert computed == ["dataset", "trained_model"]
    assert summary(result) == (
        "mandala: 2 fixtures recomputed (dataset: fixture code changed, trained_model: upstream fixture dataset changed)"
    )


def test_the_warning_for_a_cached_fixture_value_that_cannot_be_stored_names_the_fixture_and_its_conftest(pytester):
    # It named "op conftest.gen, output 0", an op the user never wrote.
    pytester.mkpydir("sub")
    (pytester.path / "sub" / "conftest.py").write_text(
        "import threading\nfrom mandala_ast.pytest import cached_fixture\n\n"
        "@cached_fixture(scope='session')\ndef gen():\n    return threading.Lock()\n"
    )
    (pytester.path / "sub" / "test_gen.py").write_text("def test_gen(gen):\n    assert gen is not None\n")
    result, _ = run(pytester)
    result.assert_outcomes(passed=1)
    output = result.stdout.str()
    assert "MandalaUnstoredWarning: cached_fixture 'gen' (sub/conftest.py): its value cannot be stored" in output
    assert "op sub.conftest.gen" not in output and "op conftest.gen" not in output


def test_a_cached_fixture_that_warns_under_filterwarnings_error_errors_in_every_run(pytester):
    # Every warning of the body was caught to rename the fixture's own: under the project's
    # `filterwarnings = error` the body ran to its end, its value was stored, and from the
    # second run on the warning was never seen again.
    pytester.makeconftest(
        "import warnings\nfrom mandala_ast.pytest import cached_fixture\n\n"
        "@cached_fixture(scope='session')\ndef dataset():\n"
        "    warnings.warn('old_api is deprecated', DeprecationWarning)\n    return list(range(10))\n"
    )
    pytester.makeini("[pytest]\nfilterwarnings =\n    error\n")
    pytester.makepyfile(test_a="def test_a(dataset):\n    assert len(dataset) == 10\n")
    for _ in range(2):
        result, _ = run(pytester)
        result.assert_outcomes(errors=1)
        assert "conftest.py:6: DeprecationWarning" in result.stdout.str()


def test_a_cached_fixture_registering_a_teardown_is_an_error_not_a_loaded_value_whose_setup_never_ran(pytester):
    # request.addfinalizer went through unseen: the first run started the "server" and its
    # test passed; every later run loaded the stored port without running the body, so the
    # test got a port with no server behind it (the generator-fixture trap, by another door).
    pytester.makepyfile(
        conftest=(
            "from mandala_ast.pytest import cached_fixture\n\nRUNNING = []\n\n"
            "@cached_fixture(scope='session')\ndef server(request):\n"
            "    RUNNING.append('up')\n    request.addfinalizer(RUNNING.clear)\n    return 1234\n"
        ),
        test_server="from conftest import RUNNING\n\ndef test_server(server):\n    assert RUNNING == ['up']\n",
    )
    for _ in range(2):
        result, _ = run(pytester)
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*FixtureError: cached_fixture 'server' registered a teardown*"])
    assert "ordinary @pytest.fixture" in result.stdout.str()


def test_the_command_line_selects_a_cached_fixtures_calls_by_the_param_column_it_shows(pytester):
    # `mandala-ast calls .mandala/pytest.db sized` shows a column request.param, but
    # `--where request.param=2` was refused: "no column 'request.param' (columns: request, ...)".
    pytester.makepyfile(
        conftest=(
            "from mandala_ast.pytest import cached_fixture\n\n"
            "@cached_fixture(params=[1, 2])\ndef sized(request):\n    return [0] * request.param\n"
        ),
        test_sized="def test_sized(sized):\n    assert len(sized) in (1, 2)\n",
    )
    run(pytester)[0].assert_outcomes(passed=2)
    db = str(pytester.path / ".mandala" / "pytest.db")
    cli = [sys.executable, "-m", "mandala_ast.cli"]
    shown = subprocess.run([*cli, "calls", db, "sized"], capture_output=True, text=True)
    assert "request.param" in shown.stdout.splitlines()[0], shown.stderr
    chosen = subprocess.run([*cli, "calls", db, "sized", "--where", "request.param=2", "--format", "json"],
                            capture_output=True, text=True)
    assert chosen.returncode == 0, chosen.stderr
    assert [row["request.param"] for row in json.loads(chosen.stdout)] == [2]
    gone = subprocess.run([*cli, "delete", db, "sized", "--where", "request.param=1", "--yes"], capture_output=True, text=True)
    assert gone.returncode == 0 and gone.stdout.startswith("deleted 1 call"), gone.stderr


def test_a_received_fixture_that_cannot_be_hashed_is_named_with_the_cached_fixture_not_an_op(pytester):
    # The error said "op conftest.from_db, argument 'conn': cannot hash...": an op the user
    # never wrote, for the cached fixture from_db.
    pytester.makepyfile(
        conftest=(
            "import threading\nimport pytest\nfrom mandala_ast.pytest import cached_fixture\n\n"
            "@pytest.fixture\ndef conn():\n    return threading.Lock()\n\n"
            "@cached_fixture\ndef from_db(conn):\n    return 5\n"
        ),
        test_db="def test_db(from_db):\n    assert from_db == 5\n",
    )
    result, _ = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ValueEncodingError: cached_fixture 'from_db' (conftest.py), argument 'conn'*"
                                 "ignore=('conn',))"])
    assert "Error: op conftest.from_db" not in result.stdout.str()


@pytest.mark.parametrize(("signature", "reads"), [
    ("request", "request.session.config.getoption('size')"),
    ("pytestconfig", "pytestconfig.getoption('size')"),
])
def test_a_cached_fixture_reading_an_option_through_the_session_or_pytestconfig_is_an_error(pytester, signature, reads):
    # Only request.config was watched: `pytest --size=7` loaded the list `--size=5` made when
    # the body read the option through request.session.config, or through the pytestconfig
    # fixture left out of the key as the error for receiving it (unhashable) advised.
    pytester.makepyfile(
        conftest=(
            "from mandala_ast.pytest import cached_fixture\n\n"
            "def pytest_addoption(parser):\n    parser.addoption('--size', type=int, default=5)\n\n"
            f"@cached_fixture\ndef dataset({signature}):\n    return list(range({reads}))\n"
        ),
        test_size="def test_size(dataset, request):\n    assert len(dataset) == request.config.getoption('size')\n",
    )
    for size in ("5", "7"):
        result, _ = run(pytester, f"--size={size}")
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines([f"*FixtureError: cached_fixture 'dataset' read {reads}*"])


def test_a_param_that_cannot_be_hashed_is_named_as_the_cached_fixtures_param_not_an_ops_argument(pytester):
    # "op conftest.locked, argument 'request.param': cannot hash a value of type lock".
    pytester.makepyfile(
        conftest=(
            "import threading\nfrom mandala_ast.pytest import cached_fixture\n\n"
            "@cached_fixture(params=[threading.Lock()])\ndef locked(request):\n    return 1\n"
        ),
        test_locked="def test_locked(locked):\n    assert locked == 1\n",
    )
    result, _ = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ValueEncodingError: cached_fixture 'locked' (conftest.py), its param: cannot hash*"])
    assert "Error: op conftest.locked" not in result.stdout.str()


def test_a_cached_fixture_fetching_a_parametrized_fixture_is_an_error_not_the_other_params_value(pytester):
    # request.getfixturevalue('dataset') counts as a helper, by its code: which param's value
    # the body got was in no key, so the test of dataset[100] got the total of dataset[10].
    pytester.makepyfile(
        conftest=(
            "from mandala_ast.pytest import cached_fixture\n\n"
            "@cached_fixture(params=[10, 100])\ndef dataset(request):\n    return list(range(request.param))\n\n"
            "@cached_fixture\ndef total(request):\n    return sum(request.getfixturevalue('dataset'))\n"
        ),
        test_total="def test_total(dataset, total):\n    assert total == sum(dataset)\n",
    )
    for _ in range(2):
        result, _ = run(pytester)
        result.assert_outcomes(errors=2)
        result.stdout.fnmatch_lines(["*FixtureError: cached_fixture 'total' fetched the parametrized fixture 'dataset'*"])
    assert "Receive 'dataset' as an argument instead" in result.stdout.str()


def test_a_storage_path_that_cannot_be_made_is_a_storage_error_naming_it_not_a_raw_os_error(pytester):
    # The plugin made the storage's directory itself first: a path under a file failed with a
    # raw FileExistsError/NotADirectoryError from mkdir, where Storage names the storage.
    pytester.makepyfile(
        conftest="from mandala_ast.pytest import cached_fixture\n\n@cached_fixture\ndef five():\n    return 5\n",
        test_five="def test_five(five):\n    assert five == 5\n",
    )
    (pytester.path / "afile").write_text("")
    result, _ = run(pytester, "--mandala-storage", "afile/sub/fixtures.db")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*StorageFormatError: cannot create the storage *afile/sub/fixtures.db*"])
