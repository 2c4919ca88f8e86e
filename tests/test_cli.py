"""Command etiquette, shared by every command: --help, --version, exit codes, stdout/stderr split."""

import json
import subprocess
import sys

import pytest

from catdog_sk import __version__

from conftest import REPO, save, textured_image

COMMANDS = ["extract", "fit", "evaluate", "predict", "serve", "monitor", "export"]


def _run(*args, **kw):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=REPO, **kw)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_and_version(command):
    helped = _run(f"catdog_sk.{command}", "--help")
    assert helped.returncode == 0 and "usage:" in helped.stdout
    # --json only where it changes the output: predict prints JSON lines anyway, serve prints no result
    assert ("--json" in helped.stdout) == (command not in ("predict", "serve"))
    if command in ("predict", "serve"):
        refused = _run(f"catdog_sk.{command}", "--json", "--model", "x", "y.jpg")
        assert refused.returncode == 2 and "unrecognized arguments: --json" in refused.stderr
    version = _run(f"catdog_sk.{command}", "--version")
    assert version.returncode == 0 and version.stdout.strip() == f"catdog_sk {__version__}"


def _option_blocks(help_text):
    """Each option's help, joined over its wrapped lines."""
    blocks, current = [], None
    for line in help_text.split("options:", 1)[1].split("\n\n")[0].splitlines():
        if line.startswith("  -"):
            current = [line]
            blocks.append(current)
        elif current is not None:
            current.append(line)
    return [" ".join(" ".join(b).split()) for b in blocks]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_states_each_default_once_in_words(command):
    text = _run(f"catdog_sk.{command}", "--help").stdout
    blocks = _option_blocks(text)
    assert len(blocks) >= 4
    for block in blocks:
        assert block.lower().count("default") <= 1, block
        assert "(default: None)" not in block and "(default: False)" not in block and "(default: [])" not in block
    if command == "fit":
        assert any(b.startswith("--cv K") and b.endswith("(default: 5)") for b in blocks), blocks


def test_predict_help_readme_and_behaviour_agree_on_unreadable_files(model_dir, tmp_path):
    """An unreadable file: its own line, the run goes on, exit status 3 (1 with --strict), as help and README say."""
    text = " ".join(_run("catdog_sk.predict", "--help").stdout.split())
    assert "3 done but some image files could not be read" in text and "(exit status 3)" in text
    readme = " ".join((REPO / "README.md").read_text().split())
    assert "an unreadable file gets a line with its error, the run goes on and the exit status is 3" in readme
    (tmp_path / "junk.jpg").write_bytes(b"not an image")
    photo = save(textured_image(), tmp_path / "ok.png")
    out = _run("catdog_sk.predict", "--model", str(model_dir), str(photo), str(tmp_path / "junk.jpg"), "--quiet")
    assert out.returncode == 3, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert "label" in lines[0] and lines[1]["error"] == "not_an_image"
    strict = _run("catdog_sk.predict", "--model", str(model_dir), str(tmp_path / "junk.jpg"), "--quiet", "--strict")
    assert strict.returncode == 1


@pytest.mark.parametrize("command", COMMANDS)
def test_unknown_option_is_a_usage_error(command):
    out = _run(f"catdog_sk.{command}", "--no-such-option")
    assert out.returncode == 2 and "usage:" in out.stderr and out.stdout == ""


@pytest.fixture
def tiny_dataset(tmp_path):
    for k in range(3):
        save(textured_image(seed=k), tmp_path / "data" / "cats" / f"c{k}.png")
        save(textured_image(seed=10 + k), tmp_path / "data" / "dogs" / f"d{k}.png")
    (tmp_path / "data" / "dogs" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    return tmp_path / "data"


def test_extract_bad_features_exit_2(tiny_dataset):
    from catdog_sk.extract import main

    with pytest.raises(SystemExit) as info:
        main(["--data", str(tiny_dataset), "--features", "hog,sift"])
    assert info.value.code == 2


def test_extract_empty_dataset_exit_1_with_one_line(tmp_path, capsys):
    from catdog_sk.extract import main

    assert main(["--data", str(tmp_path), "--features", "hog"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1 and "No labelled images" in captured.err


def test_extract_json_summary_lists_skipped_files_and_cache_stats(tiny_dataset, tmp_path, capsys):
    from catdog_sk.extract import main

    args = ["--data", str(tiny_dataset), "--features", "hog,color", "--cache", str(tmp_path / "c"), "--json",
            "--quiet", "--skipped-csv", str(tmp_path / "skipped.csv")]
    assert main(args) == 3  # done, but a file was skipped
    captured = capsys.readouterr()
    assert captured.err == ""  # --quiet: nothing on stderr
    summary = json.loads(captured.out)
    split = summary["splits"]["all"]
    assert split["found"] == {"cat": 3, "dog": 4} and split["extracted"] == {"cat": 3, "dog": 3}
    assert (split["cache_hits"], split["cache_misses"]) == (0, 12)
    (skipped,) = summary["skipped"]
    assert skipped["path"].endswith("broken.jpg") and skipped["reason"] in ("truncated", "corrupt", "not_an_image")
    assert "broken.jpg" in (tmp_path / "skipped.csv").read_text()
    assert main(args) == 3
    again = json.loads(capsys.readouterr().out)["splits"]["all"]
    assert (again["cache_hits"], again["cache_misses"]) == (12, 0)
    assert main(args + ["--strict"]) == 1


def test_extract_text_summary_and_no_progress_when_not_a_tty(tiny_dataset, tmp_path):
    out = _run("catdog_sk.extract", "--data", str(tiny_dataset), "--features", "color", "--no-cache")
    assert out.returncode == 3
    assert "total: 7 images" in out.stdout and "broken.jpg" in out.stdout
    assert "img/s]" not in out.stderr  # tqdm bar is off: stderr is a pipe, not a terminal
    assert "cache: off" in out.stdout


def test_import_is_cheap():
    code = "import sys, catdog_sk; print(sorted(m for m in ('torch', 'timm', 'matplotlib', 'fastapi', 'sklearn') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"


def test_long_work_without_a_terminal_prints_a_progress_line_every_few_seconds(capsys):
    """A log (no TTY) gets plain lines, not tqdm's carriage returns; a short run gets none."""
    from catdog_sk._progress import LineProgress

    quick = LineProgress(100, "extract", "img", interval=60)
    quick.update(100)
    quick.close()
    assert capsys.readouterr().err == ""
    bar = LineProgress(4160, "extract", "img", interval=0)
    bar.set_postfix_str("hog / svm")
    bar.update(1040)
    bar.close()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and "\r" not in "".join(lines)
    assert lines[0].startswith("extract: 1,040/4,160 img (25%), ") and "left [hog / svm]" in lines[0]
    assert lines[1].startswith("extract: 1,040/4,160 img (25%), ") and "done in" in lines[1]


@pytest.mark.parametrize("command", ["predict", "serve", "extract"])
def test_a_stopped_command_promises_resuming_only_where_a_cache_keeps_work(command, tmp_path, capsys):
    """Issue 27: serve's SIGTERM line was extract's "finished cache entries are kept, run again to resume"."""
    import importlib

    from catdog_sk import _cli

    parser = importlib.import_module(f"catdog_sk.{command}").build_parser()
    argv = {"predict": ["x.jpg"], "serve": [], "extract": ["--data", "d", "--cache", str(tmp_path)]}[command]

    def body(args):
        raise KeyboardInterrupt

    assert _cli.run(body, parser, argv) == 130
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("interrupted")
    assert ("run again to resume" in err) == (command == "extract"), err
