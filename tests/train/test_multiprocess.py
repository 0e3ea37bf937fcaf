"""One job as two processes (jax.distributed over gloo on 127.0.0.1, one CPU device each) trains, logs and
evaluates exactly as one process with two devices."""

import json
import os
import socket
import subprocess
import sys

import pytest

TRAIN = ["train", "vae", "--dataset", "digits", "--steps", "20", "--no-progress", "--set", "checkpoint_every=10",
         "--set", "log_every=5", "--set", "num_samples=4"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(argv, devices=1):
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}", "JAX_PLATFORMS": "cpu"}
    return subprocess.Popen([sys.executable, "-m", "gm_jax.cli", *map(str, argv)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _job(argv):
    """argv run as two processes of one job; returns their (returncode, stdout, stderr)."""
    port = _free_port()
    procs = [_start([*argv, "--coordinator", f"127.0.0.1:{port}", "--num-processes", 2, "--process-id", i])
             for i in range(2)]
    return [(p.wait(timeout=300), *p.communicate()) for p in procs]


def _losses(run):
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()
            if "loss" in json.loads(line)]


@pytest.mark.slow  # ~60 s on 2 cores (three processes training at once, then two evaluating)
def test_two_processes_train_and_evaluate_as_one_process_with_two_devices(tmp_path):
    single = _start([*TRAIN, "--workdir", tmp_path / "single"], devices=2)
    outs = _job([*TRAIN, "--workdir", tmp_path / "job"])
    assert single.wait(timeout=300) == 0, single.communicate()[1][-2000:]
    for code, out, err in outs:
        assert code == 0, err[-2000:]
    assert "test_nll_nats" in outs[0][1] and "test_nll_nats" not in outs[1][1]  # process 0 reports
    one, job = (json.loads((tmp_path / r / "results.json").read_text()) for r in ("single", "job"))
    assert job["test_nll_nats"] == pytest.approx(one["test_nll_nats"], rel=1e-5)
    a, b = _losses(tmp_path / "single"), _losses(tmp_path / "job")
    assert len(a) == len(b) >= 4 and b == pytest.approx(a, rel=1e-5)
    # evaluation as a job of two: the same test NLL
    for code, _, err in _job(["evaluate", "--workdir", tmp_path / "job", "--no-progress"]):
        assert code == 0, err[-2000:]
    assert json.loads((tmp_path / "job" / "results.json").read_text())["test_nll_nats"] == \
        pytest.approx(one["test_nll_nats"], rel=1e-5)


def test_bad_process_flags_are_one_line(capsys, tmp_path):
    from gm_jax.cli import main

    for extra, words in ((["--num-processes", "2"], "need --coordinator"),
                         (["--coordinator", "nohost"], "expected HOST:PORT"),
                         (["--coordinator", "127.0.0.1:99999", "--num-processes", "2", "--process-id", "0"],
                          "expected HOST:PORT"),
                         (["--compilation-cache", ""], "is empty"),
                         (["--coordinator", "127.0.0.1:1", "--num-processes", "2"], "--process-id I"),
                         (["--coordinator", "127.0.0.1:1", "--num-processes", "2", "--process-id", "2"], "in [0,")):
        assert main(["train", "vae", "--workdir", str(tmp_path / "w"), *extra]) == 2
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "w").exists()
