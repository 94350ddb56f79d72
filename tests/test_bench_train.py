"""benchmarks/bench_train.py on the CPU: what its output and record say of how they were made (the command, the
CPUs, when the timings ended)."""
import importlib.util
import json

import nclib
from nclib import figures, train


def _load(name):
    spec = importlib.util.spec_from_file_location(name, nclib.ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _load("bench_train")
TINY = ["--device", "cpu", "--width", "16", "--depth", "1", "--steps", "4", "--warmup", "1", "--threads", "1"]


def test_the_output_opens_with_its_command_and_the_record_names_the_cpus(tmp_path, capsys, monkeypatch):
    """The first line is ``$ `` and the command, with the thread variables that were set: what read_benchmark
    takes as the command, the same as the record's; the record and the output give the host's CPUs."""
    for name in bench.COMMAND_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    path = tmp_path / "cpu.json"
    argv = TINY + ["--repeats", "2", "--json", str(path)]
    bench.main(argv)
    out = tmp_path / "out.txt"
    out.write_text(capsys.readouterr().out)
    record = json.loads(path.read_text())
    first = out.read_text().splitlines()[0]
    assert first.startswith("$ OMP_NUM_THREADS=1 python ") and first.endswith(" ".join(argv))
    assert "bench_train.py" in first
    assert figures.read_benchmark(out)["command"] == record["command"] == first[2:]
    assert record["cpu_count"] >= 1 and 1 <= record["cpu_affinity"] <= record["cpu_count"]
    assert f"cpus            {record['cpu_count']} logical CPUs, {record['cpu_affinity']} usable" in out.read_text()
    assert record["started_utc"] <= record["finished_utc"]


def test_the_record_ends_after_the_figure_timings(tmp_path, capsys, monkeypatch):
    """``finished_utc`` is taken once every timing, the figure's runs included, is done."""
    events = []

    def now():
        events.append("time")
        return f"t{len(events)}"

    figure_loop = bench.figure_loop

    def timed_figure(*args, **kw):
        events.append("figure")
        return figure_loop(*args, **kw)

    monkeypatch.setattr(bench, "utc_now", now)
    monkeypatch.setattr(bench, "figure_loop", timed_figure)
    path = tmp_path / "cpu.json"
    bench.main(TINY + ["--repeats", "1", "--figure-epochs", "1", "--json", str(path)])
    record = json.loads(path.read_text())
    finished = int(record["finished_utc"][1:]) - 1  # the event that gave it
    assert events[finished] == "time" and events.index("figure") < finished
