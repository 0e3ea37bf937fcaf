"""One job as two processes (jax.distributed over gloo on 127.0.0.1, one CPU device each) trains, logs and
evaluates exactly as one process with two devices, and survives losing a process."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

# a constant learning rate: the loss at step t does not depend on --steps, so a job stopped early and resumed
# can be compared step by step with an uninterrupted run
TRAIN = ["train", "vae", "--dataset", "digits", "--steps", "300", "--no-progress", "--set", "schedule=constant",
         "--set", "checkpoint_every=100", "--set", "log_every=10", "--set", "num_samples=4"]
# the job streams its batches from disk, each process reading its rows; the single process keeps the data on device
JOB = [*TRAIN, "--set", "max_device_bytes=0"]
METRICS = ["evaluate", "--metrics", "nll,fid,kid,prdc", "--features", "raw", "--real", "digits:test", "--num", "64",
           "--batch-size", "32", "--no-progress"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(argv, devices=1):
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}", "JAX_PLATFORMS": "cpu"}
    return subprocess.Popen([sys.executable, "-m", "gm_jax.cli", *map(str, argv)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _start_job(argv):
    """argv started as the two processes of one job."""
    port = _free_port()
    return [_start([*argv, "--coordinator", f"127.0.0.1:{port}", "--num-processes", 2, "--process-id", i])
            for i in range(2)]


def _finish(procs, timeout=240):
    """Each process's (returncode, stdout, stderr)."""
    return [(p.wait(timeout=timeout), *p.communicate()) for p in procs]


def _succeeded(*outs):
    for code, _, err in outs:
        assert code == 0, err[-2000:]


def _own_lines(out: str) -> list[str]:
    """gm-jax's lines of an output (gloo says on stdout that it connected)."""
    return [line for line in out.splitlines() if line.strip() and not line.startswith("[Gloo]")]


def _losses(run):
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()
            if "loss" in json.loads(line)]


def _wait_for(path, procs, timeout=240):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert all(p.poll() is None for p in procs), [p.communicate()[1][-2000:] for p in procs]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


# ~80 s on 2 cores: up to three processes at once, each importing JAX and loading the session's compiled programs
def test_a_job_of_two_processes_survives_a_lost_process_and_matches_one_process_with_two_devices(tmp_path):
    """Two processes x one device, streaming their rows from disk, train as one process x two devices with the
    data on device; killing one process stops the other
    with one line (exit 1), and starting both again resumes exactly; evaluation over two processes gives
    the numbers of one process with two devices, reported and written once."""
    single = _start([*TRAIN, "--workdir", tmp_path / "single"], devices=2)
    job = _start_job([*JOB, "--workdir", tmp_path / "job"])
    _wait_for(tmp_path / "job" / "checkpoints" / "100", job)
    job[1].kill()
    (code, _, err), _ = _finish(job, timeout=120)
    assert code == 1 and err.strip().splitlines()[-1].startswith("gm-jax: error: process 0 of 2: the job lost a "
                                                                 "process"), err[-2000:]
    assert "start all of them again with the same command" in err and "Traceback" not in err
    assert len(_losses(tmp_path / "job")) < 30  # stopped before the end

    resumed = _finish(_start_job([*JOB, "--workdir", tmp_path / "job"]))
    _succeeded(*resumed, *_finish([single]))
    assert "test_nll_nats" in resumed[0][1] and not _own_lines(resumed[1][1])  # process 0 reports, alone
    one, two = (json.loads((tmp_path / r / "results.json").read_text()) for r in ("single", "job"))
    assert two["test_nll_nats"] == pytest.approx(one["test_nll_nats"], rel=1e-5)
    a, b = _losses(tmp_path / "single"), _losses(tmp_path / "job")
    assert len(a) == len(b) == 30 and b == pytest.approx(a, rel=1e-5)

    # sample-quality metrics and the test NLL of the job's run: two processes vs one process with two devices;
    # and the run's own evaluation (results.json) by two processes
    outs = _finish([*_start_job([*METRICS, "--fake", tmp_path / "job"]),
                    _start([*METRICS, "--fake", tmp_path / "job", "--out", tmp_path / "one.json"], devices=2),
                    *_start_job(["evaluate", "--workdir", tmp_path / "job", "--no-progress"])])
    _succeeded(*outs)
    assert "wrote" in outs[0][1] and not _own_lines(outs[1][1])
    assert "test_nll_nats" in outs[3][1] and not _own_lines(outs[4][1])
    assert json.loads((tmp_path / "job" / "results.json").read_text())["test_nll_nats"] == \
        pytest.approx(one["test_nll_nats"], rel=1e-5)
    [by_two] = json.loads((tmp_path / "job" / "evaluations.json").read_text())["evaluations"]
    by_one = json.loads((tmp_path / "one.json").read_text())
    for key in ("test_nll_nats", "fid", "kid_mean", "precision", "recall", "density", "coverage"):
        assert by_two[key] == pytest.approx(by_one[key], rel=1e-4, abs=1e-6), key


@pytest.mark.slow  # ~40 s: two processes trained, stopped and resumed
def test_sigterm_stops_every_process_of_a_job_at_one_step_and_the_job_resumes(tmp_path):
    """SIGTERM (a scheduler's preemption) reaches JAX's preemption service, so both processes save the same
    step, say so and exit 143; the same command then finishes the job."""
    argv = [*TRAIN, "--steps", "3000", "--workdir", tmp_path / "job"]
    job = _start_job(argv)
    _wait_for(tmp_path / "job" / "checkpoints" / "100", job)
    for p in job:
        p.send_signal(signal.SIGTERM)
    outs = _finish(job, timeout=120)
    steps = set()
    for code, _, err in outs:
        last = err.strip().splitlines()[-1]
        assert code == 143 and last.startswith("gm-jax: SIGTERM at step ") and "run the same command" in last, err
        steps.add(int(last.split("step ")[1].split(":")[0]))
    [step] = steps  # the same step on both
    assert 100 <= step < 3000 and (tmp_path / "job" / "checkpoints" / str(step)).is_dir()
    resumed = _finish(_start_job([*TRAIN, "--steps", step + 20, "--workdir", tmp_path / "job"]))
    _succeeded(*resumed)
    assert json.loads((tmp_path / "job" / "results.json").read_text())["steps"] == step + 20


def test_processes_given_different_commands_stop_at_once_in_one_line(tmp_path):
    port = _free_port()
    procs = [_start([*TRAIN, "--steps", steps, "--workdir", tmp_path / "w", "--coordinator", f"127.0.0.1:{port}",
                     "--num-processes", 2, "--process-id", i]) for i, steps in enumerate((20, 40))]
    for code, _, err in _finish(procs, timeout=120):
        assert code == 2 and err.strip().splitlines()[-1] == (
            "gm-jax: error: process 1 of this job was started with another command than process 0; give every "
            "process the same command (only --process-id, --data-dir, --compilation-cache and --no-progress may "
            "differ)"), err[-2000:]
    assert not (tmp_path / "w").exists()


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
