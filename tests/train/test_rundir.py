"""A run directory is never corrupted: refused commands write nothing, safe changes go to a resume history,
one writer at a time, damaged checkpoints are skipped, SIGTERM saves, logs never repeat a step."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from gm_jax.cli import main
from gm_jax.train import Checkpointer
from gm_jax.train.rundir import RunLock, effective_train_config, truncate_log

TINY = ["--set", "hidden=16", "--set", "latent_dim=2", "--set", "batch_size=32", "--set", "log_every=5",
        "--set", "checkpoint_every=10", "--set", "num_samples=4", "--set", "eval_max_examples=32",
        "--set", "eval_importance_samples=2", "--set", "warmup_steps=0"]


def _train(workdir, steps, *extra):
    return main(["train", "vae", "--dataset", "digits", "--steps", str(steps), "--workdir", str(workdir),
                 "--no-progress", *extra])


def _error_line(capsys):
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line]
    assert len(err) == 1, err
    return err[0]


def _snapshot(workdir):
    """{relative path: bytes} of every file in a run dir."""
    out = {}
    for root, _, files in os.walk(workdir):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, workdir)] = f.read()
    return out


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    """A 20-step run (checkpoints at 10 and 20), trained once through the CLI."""
    workdir = tmp_path_factory.mktemp("base") / "run"
    assert _train(workdir, 20, *TINY) == 0
    return workdir


@pytest.fixture
def run(base_run, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(base_run, copy)
    capsys.readouterr()
    return copy


@pytest.mark.parametrize("extra,message", [
    (["--set", "hidden=64"], "resuming a vae run with other model settings (hidden) would make it another model"),
    (["--set", "seed=3"], "a resumed run keeps its seed"),
    (["--set", "batch_size=10000000"], "batch_size 10000000 exceeds the 1437 training examples"),
    (["--set", "lr=nan"], "lr must be a finite number"),
    (["--set", "grad_clip=1.0"], "holds a different model or optimizer: the optimizer state"),
    (["--set", "ema_decay=0.9"], "holds a different model or optimizer: the EMA"),
])
def test_a_refused_resume_writes_nothing(run, capsys, extra, message):
    before = _snapshot(run)
    assert _train(run, 30, *extra) == 2
    assert message in _error_line(capsys)
    assert _snapshot(run) == before


def test_fewer_steps_than_the_checkpoint_are_refused(run, capsys):
    before = _snapshot(run)
    assert _train(run, 15) == 2
    assert "holds a checkpoint at step 20, past steps=15; pass --steps 20 or more" in _error_line(capsys)
    assert _snapshot(run) == before


def test_another_model_is_refused_even_without_the_run_record(run, capsys):
    os.remove(run / "config.json")
    before = _snapshot(run)
    assert main(["train", "made", "--workdir", str(run), "--no-progress"]) == 2
    assert "holds a vae run on digits, not made on digits" in _error_line(capsys)
    assert _snapshot(run) == before


def test_a_run_that_diverges_at_once_leaves_the_record_untouched(run, capsys):
    record = (run / "config.json").read_text()
    assert _train(run, 30, "--set", "lr=1e30") == 2
    assert "non-finite loss or gradient at step 21" in _error_line(capsys)
    assert (run / "config.json").read_text() == record
    assert _train(run, 30) == 0  # a plain retry resumes with the run's own settings
    assert json.loads((run / "config.json").read_text())["resumes"] == [{"step": 20, "changes": {"steps": [20, 30]}}]


def test_safe_changes_are_recorded_in_the_resume_history_and_logs_do_not_repeat(run):
    original = json.loads((run / "config.json").read_text())
    with open(run / "metrics.jsonl", "a") as f:  # a record logged after the last checkpoint, then a kill
        f.write(json.dumps({"step": 25, "loss": 1.0}) + "\n" + '{"step": 2')
    assert _train(run, 30, "--set", "lr=5e-4") == 0
    record = json.loads((run / "config.json").read_text())
    assert record["train_config"] == original["train_config"]  # the original is kept
    assert record["resumes"] == [{"step": 20, "changes": {"lr": [original["train_config"]["lr"], 5e-4],
                                                          "steps": [20, 30]}}]
    assert effective_train_config(record)["lr"] == 5e-4 and effective_train_config(record)["steps"] == 30
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [5, 10, 15, 20, 25, 30]
    assert all(json.loads(line)["loss"] != 1.0 for line in (run / "metrics.jsonl").read_text().splitlines())
    # sample and evaluate use the effective config
    assert main(["evaluate", "--workdir", str(run)]) == 0
    assert json.loads((run / "results.json").read_text())["steps"] == 30


def test_truncate_log_keeps_steps_up_to_the_checkpoint(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps({"step": s}) + "\n" for s in (5, 10, 15)) + '[1, 2]\n{"step": "x"}\n{"ste')
    assert truncate_log(str(path), 10) == 4
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [5, 10]


def test_a_second_training_of_one_workdir_is_refused_and_a_stale_lock_taken_over(run, capsys):
    with RunLock(str(run)):
        before = _snapshot(run)
        assert _train(run, 30) == 2
        assert f"is in use by another training (pid {os.getpid()})" in _error_line(capsys)
        assert _snapshot(run) == before
    (run / ".lock").write_text("999999")  # left by a killed run: no process holds the lock
    assert _train(run, 30) == 0


def _damage(run, step):
    for root, _, files in os.walk(run / "checkpoints" / str(step) / "state"):
        for name in files:
            if "/d" in root:  # the array data files
                with open(os.path.join(root, name), "r+b") as f:
                    f.truncate(8)


def test_a_damaged_latest_checkpoint_falls_back_to_the_newest_intact_one(run, capsys, tmp_path):
    _damage(run, 20)
    assert main(["sample", "--workdir", str(run), "--num", "4", "--out", str(tmp_path / "s.npz"), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "checkpoint step 20" in err and "is damaged" in err and "using step 10" in err
    assert len(err.strip().splitlines()) == 2 and "Traceback" not in err, err  # the notice and "sampling 4 ..."
    assert main(["sample", "--workdir", str(run), "--step", "20", "--out", str(tmp_path / "s.npz")]) == 2
    assert "checkpoint of step 20" in (line := _error_line(capsys)) and "choose another --step (saved: 10)" in line
    assert _train(run, 20) == 0  # retrains steps 11..20 from step 10
    assert "resuming from step 10" in capsys.readouterr().err
    assert os.listdir(run / "damaged_checkpoints")[0].startswith("20-")
    assert Checkpointer(str(run / "checkpoints")).latest_step() == 20
    _damage(run, 20)
    _damage(run, 10)
    assert main(["evaluate", "--workdir", str(run)]) == 2
    line = _error_line(capsys)
    assert "no intact checkpoint in" in line and "step 20:" in line and "step 10:" in line


def test_an_unreadable_orbax_metadata_file_is_not_reported_as_an_error(run, capsys, caplog, tmp_path):
    (run / "checkpoints" / "20" / "_CHECKPOINT_METADATA").write_text("")  # orbax's bookkeeping only
    assert main(["sample", "--workdir", str(run), "--num", "4", "--out", str(tmp_path / "s.npz")]) == 0
    assert "step 20" in capsys.readouterr().err  # the state itself restores
    assert not [r for r in caplog.records if "Metadata file" in r.getMessage()]


@pytest.mark.parametrize("content,message", [
    ('{"model": "vae", "dataset": "dig', "is not valid JSON"),
    ('["vae"]', "is not a gm-jax run record"),
    ('{"model": "vae", "dataset": "digits", "model_config": {}}', "missing train_config"),
    ('{"model": "vae", "dataset": 5, "model_config": {}, "train_config": {}}', "dataset of the wrong type"),
    ('{"model": "vae", "dataset": "digits", "model_config": {}, "train_config": {}, "resumes": "x"}',
     "resumes of the wrong type"),
    ('{"model": "vae", "dataset": "digits", "model_config": {}, "train_confg": {}}', "missing train_config"),
    ('{"model": "vae", "dataset": "digits", "model_config": {}, "train_config": {}, "note": 1}', "unknown key 'note'"),
])
def test_a_broken_run_record_is_one_line(run, capsys, tmp_path, content, message):
    (run / "config.json").write_text(content)
    assert main(["sample", "--workdir", str(run), "--out", str(tmp_path / "s.png")]) == 2
    assert message in _error_line(capsys)


def test_an_unknown_field_in_the_run_record_is_one_line(run, capsys, tmp_path):
    record = json.loads((run / "config.json").read_text())
    record["model_config"]["widht"] = 3
    (run / "config.json").write_text(json.dumps(record))
    assert main(["sample", "--workdir", str(run), "--out", str(tmp_path / "s.png")]) == 2
    assert "VAEConfig has no field 'widht'" in _error_line(capsys)


def test_a_new_run_starts_from_a_config_file(run, tmp_path, capsys):
    assert main(["train", "--config", str(run / "config.json"), "--steps", "5", "--workdir", str(tmp_path / "new"),
                 "--no-progress"]) == 0
    old, new = (json.loads((p / "config.json").read_text()) for p in (run, tmp_path / "new"))
    assert new["model"] == "vae" and new["model_config"] == old["model_config"]
    assert new["train_config"] == {**old["train_config"], "steps": 5}
    assert main(["train", "made", "--config", str(run / "config.json")]) == 2
    assert "is a vae config, not made" in _error_line(capsys)
    (tmp_path / "part.json").write_text(json.dumps({"train_config": {"lr": 0.01}}))  # part of a config, no model
    assert main(["train", "vae", "--config", str(tmp_path / "part.json"), "--steps", "2", "--workdir",
                 str(tmp_path / "part"), "--no-progress", *TINY]) == 0
    assert json.loads((tmp_path / "part" / "config.json").read_text())["train_config"]["lr"] == 0.01
    assert main(["train", "--config", str(tmp_path / "part.json")]) == 2
    assert "train needs a MODEL" in _error_line(capsys)


def test_sigterm_saves_a_checkpoint_and_exits_143(tmp_path):
    workdir = tmp_path / "run"
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.Popen([sys.executable, "-m", "gm_jax.cli", "train", "vae", "--steps", "100000", "--workdir",
                             str(workdir), "--no-progress", *TINY, "--set", "checkpoint_every=100000"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while not (workdir / "metrics.jsonl").exists() or os.path.getsize(workdir / "metrics.jsonl") == 0:
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-2000:]
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gm-jax: SIGTERM at step "), err[-2000:]
    step = int(lines[0].split("at step ")[1].split(":")[0])
    assert Checkpointer(str(workdir / "checkpoints")).latest_step() == step
    assert json.loads((workdir / "config.json").read_text())["model"] == "vae"


def test_an_unwritable_workdir_is_refused_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert _train(blocker / "run", 5) == 2
    assert f"{blocker} is a file, not a directory" in _error_line(capsys)
    if os.geteuid() != 0:  # root writes through any mode bits
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        assert _train(locked / "run", 5) == 2
        assert "is not writable" in _error_line(capsys)


def test_sampling_and_evaluation_settings_may_change_on_resume(run, tmp_path):
    """VAE's eval_importance_samples only sizes the test bound: a resume may change it (recorded apart from
    the training changes), and sample/evaluate then use the new value."""
    assert _train(run, 20, "--set", "eval_importance_samples=3") == 0
    record = json.loads((run / "config.json").read_text())
    assert record["model_config"]["eval_importance_samples"] == 2  # the original stays
    assert record["resumes"] == [{"step": 20, "model_changes": {"eval_importance_samples": [2, 3]}}]
    from gm_jax.cli._common import load_run

    _, model, _, _ = load_run(str(run), None)
    assert model.config.eval_importance_samples == 3


@pytest.mark.parametrize("name,content", [
    ("evaluations.json", '{"evaluations": [1, 2]}'), ("evaluations.json", '{"evaluations": "abc"}'),
    ("results.json", "garbage{"), ("results.json", "[1, 2]"),
])
def test_a_broken_results_or_evaluations_file_is_refused_before_any_work(run, capsys, name, content):
    (run / name).write_text(content)
    assert main(["evaluate", "--workdir", str(run)]) == 2
    assert f"{run / name} is not" in _error_line(capsys)  # one line: no progress bar, so no work was done


def test_a_signal_after_the_last_checkpoint_stops_at_once_with_one_line():
    """After training (the final evaluation), SIGTERM has nothing left to save: it raises at once."""
    from gm_jax.train.preemption import StopAtOnce, TrainingStopped

    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(TrainingStopped, match=r"^SIGTERM after training: step 7 is saved") as stopped:
        with StopAtOnce("after training: step 7 is saved"):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises before this ends
    assert stopped.value.exit_code == 143
    assert signal.getsignal(signal.SIGTERM) is previous  # the handlers come back
