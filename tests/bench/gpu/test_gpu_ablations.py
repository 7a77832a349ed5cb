"""Every GPU ablation (bench/gpu/ablations.yaml) is a config Axolotl accepts, so no device time goes to a
typo."""

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from axolotl_launch import ROOT

from axolotl_nextai.checks.recipe_check import check_config

spec = importlib.util.spec_from_file_location("run_config", ROOT / "bench" / "gpu" / "run_config.py")
run_config = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run_config)
ABLATIONS = list(yaml.safe_load(run_config.ABLATIONS.read_text()))


@pytest.mark.parametrize("name", ABLATIONS)
def test_ablation_validates_offline_with_its_plugins(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = run_config.load_run(name)
    for dataset in cfg["datasets"]:
        (tmp_path / dataset["path"]).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / dataset["path"]).touch()
    assert run_config.ablation(name)["prediction"]
    check_config(cfg)


def test_standalone_engines_are_named_and_the_rest_train_through_axolotl():
    assert run_config.engine("stock-grouped") == "hf" and run_config.engine("unsloth-grouped") == "unsloth"
    assert run_config.engine("faithful-grouped") == "axolotl"
    assert run_config.engine("recipes/llama2-70b-v5.yml") == "axolotl"


def test_null_removes_a_key_and_an_unknown_name_lists_the_known_ones():
    no_liger = run_config.load_run("fast-no-liger")
    assert "liger_rope" not in no_liger and no_liger["plugins"] == ["axolotl_nextai.NextAIPlugin"]
    with pytest.raises(SystemExit, match="fast-no-liger"):
        run_config.load_run("fast-no-ligr")


def load_bench(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / "gpu" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_tables_group_lists_every_paper_row_with_its_steps():
    specs = run_config.run_specs(["@tables", "recipes/llama2-70b-v5.yml:20", "fast-mb2"], default_steps=9)
    tables = [spec for spec in specs if spec.startswith("t")]
    assert {spec.split(":")[0] for spec in tables} == {
        "t4-r4",
        "t4-r8",
        "t4-r16",
        "t4-r64",
        "t4-r64-s8",
        "t4-r64-chunks",
        "t4-r8-stock",
        "t5-o-down",
        "t5-qk",
        "t5-attn",
        "t5-ffn",
        "t5-all",
        "t6-eager",
    }
    assert "t4-r64:3:1" in tables and "t5-qk:6:1" in tables
    assert specs[-2:] == ["recipes/llama2-70b-v5.yml:20:1", "fast-mb2:9:1"]  # RUN:STEPS:GPUS
    assert set(run_config.run_specs(["@tables:4"], default_steps=9)) == {
        f"{spec.split(':')[0]}:4:1" for spec in tables
    }
    # each Table 4/6 run trains on rows as long as the cutoff allows, read from the bench's data folder
    cfg = run_config.load_run("t4-r8")
    assert cfg["datasets"][0]["path"] == "data/v5-4096.jsonl" and cfg["sequence_len"] == 4096
    moved = run_config.moved_to(cfg["datasets"][0], Path("/tmp/bench-data"))
    assert moved["path"] == "/tmp/bench-data/v5-4096.jsonl"
    assert run_config.moved_to({"path": "/abs/rows.jsonl"}, Path("/x")) == {"path": "/abs/rows.jsonl"}


def test_the_stock_row_is_the_r8_recipe_without_its_memory_levers():
    stock, shipped = run_config.load_run("t4-r8-stock"), run_config.load_run("t4-r8")
    assert {k for k in shipped.keys() | stock.keys() if shipped.get(k) != stock.get(k)} == {
        "plugins",
        "activation_offloading",
        "nextai_dequant_chunk_mib",
        "nextai_embeddings_on_cpu",
        "nextai_expandable_segments",
        "liger_rope",
        "liger_rms_norm",
        "liger_glu_activation",
        "liger_fused_linear_cross_entropy",
    }


def test_trim_wheel_keeps_the_cpu_and_one_cuda_library_and_their_record_lines(tmp_path):
    trim_wheel = load_bench("trim_wheel")
    wheel = tmp_path / "bitsandbytes-0.50.2-py3-none-manylinux_2_24_x86_64.whl"
    libs = [f"bitsandbytes/libbitsandbytes_{name}.so" for name in ("cpu", "cuda118", "cuda130", "rocm64")]
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("bitsandbytes/__init__.py", "")
        for lib in libs:
            zf.writestr(lib, b"\0" * 100)
        zf.writestr(
            "bitsandbytes-0.50.2.dist-info/RECORD",
            "".join(f"{name},sha256=x,1\n" for name in ["bitsandbytes/__init__.py", *libs]),
        )
    assert trim_wheel.trim(wheel, "130") == [libs[1], libs[3]]
    with zipfile.ZipFile(wheel) as zf:
        assert sorted(n for n in zf.namelist() if n.endswith(".so")) == [libs[0], libs[2]]
        record = zf.read("bitsandbytes-0.50.2.dist-info/RECORD").decode()
    assert "cuda118" not in record and "rocm64" not in record and "cuda130" in record
    # a trimmed wheel again: nothing to do (wheels.sh fetch re-run)
    assert trim_wheel.trim(wheel, "130") == []
    with pytest.raises(SystemExit, match="libbitsandbytes_cuda999.so"):
        trim_wheel.trim(wheel, "999")


def test_trim_wheel_drops_top_level_folders_with_their_entry_points(tmp_path):
    trim_wheel = load_bench("trim_wheel")
    wheel = tmp_path / "unsloth-2026.10.9-py3-none-any.whl"
    files = ["unsloth/__init__.py", "studio/app.js", "unsloth_cli/__init__.py", "unsloth_cli/main.py"]
    with zipfile.ZipFile(wheel, "w") as zf:
        for name in files:
            zf.writestr(name, "x")
        zf.writestr("unsloth-2026.10.9.dist-info/RECORD", "".join(f"{name},sha256=x,1\n" for name in files))
        zf.writestr(
            "unsloth-2026.10.9.dist-info/entry_points.txt",
            "[console_scripts]\nunsloth = unsloth_cli.main:app\nunsloth-train = unsloth:train\n",
        )
    assert trim_wheel.trim(wheel, folders=("studio", "unsloth_cli")) == files[1:]
    with zipfile.ZipFile(wheel) as zf:
        assert [n for n in zf.namelist() if not n.startswith("unsloth-")] == ["unsloth/__init__.py"]
        assert zf.read("unsloth-2026.10.9.dist-info/RECORD").decode() == "unsloth/__init__.py,sha256=x,1\n"
        assert zf.read("unsloth-2026.10.9.dist-info/entry_points.txt").decode() == (
            "[console_scripts]\nunsloth-train = unsloth:train\n"
        )


def fake_run(folder: Path, name: str, rc: str, log: str = "", report: dict | None = None) -> None:
    (folder / f"{name}.rc").write_text(rc)
    (folder / f"{name}.log").write_text(log)
    if report:
        (folder / f"{name}.report.json").write_text(json.dumps(report))


def test_tables_report_puts_each_run_beside_the_paper_with_its_status(tmp_path):
    report70b = load_bench("report70b")
    history = [{"step": s, "elapsed_s": 18.0 * s, "real_tokens": 16_256 * s} for s in (1, 2, 3)]
    fake_run(
        tmp_path,
        "t4-r8",
        "rc=0 wall_seconds=110",
        report={
            "history": history,
            "trainable_params": 34_078_720,
            "peak_memory_allocated_gib": 35.61,
            "peak_memory_reserved_gib": 36.02,
            "tokens_per_s": 903.1,
            "mfu": 0.47,
            "final_loss": 10.37,
        },
    )
    fake_run(
        tmp_path,
        "t4-r8-stock",
        "rc=1",
        log="torch.OutOfMemoryError: CUDA out of memory. Tried to allocate "
        "448.00 MiB. GPU 0 has a total capacity of 139.80 GiB",
    )
    fake_run(
        tmp_path,
        "t6-eager",
        "rc=1",
        log="config error: /tmp/cfg-t6-eager.yml: attn_implementation: eager "
        "at 4,096 tokens per micro-step keeps ... at least 39.38 GiB, about 47.5 GiB at peak",
    )
    (tmp_path / "t4-r8.smi.txt").write_text("38000\n39123\n")
    text = "\n".join(report70b.render_tables([(tmp_path, ["t4-r8", "t4-r8-stock", "t6-eager"])], 362.0))
    table4 = text.split("### Table 4")[1].split("###")[0]
    assert (
        "| r 8 | 46.95 | 0.824 | **fits** | 35.61 | 36.02 | 38.68 (0.82x the paper's) | 39123 | 0.14 | 18.0 "
        "| 903 | 10.370 |"
    ) in table4
    assert "layer inputs on the CPU, Liger, dequant in 64 MiB chunks, embeddings on the CPU" in table4
    assert "out of memory (a 448.00 MiB request)" in table4 and "| none |" in table4
    table6 = text.split("### Table 6")[1]
    assert "| FlashAttention-2 (SDPA here) | 46.95 | 19m18s | **fits** |" in table6
    assert "| eager (FlashAttention-2 off) | 68.13 | 36m12s | refused before loading" in table6
    assert "refused before loading: attn_implementation: eager needs at least 39.38 GiB" in table6
    assert "### Table 5" not in text  # no Table 5 run in this call


@pytest.mark.slow
def test_gpu70b_sh_runs_end_to_end_on_the_cpu(tmp_path):
    """The device call's script, on the tiny checkpoint: data written outside the repo, two lanes sharing the
    CPU as GPUS=0,0 share a card; a run that trains, the same rows fused, one through bench/gpu/standalone.py
    and one the plugin refuses before loading; then the report reads the archive. A second call reuses the
    checkpoint and the rows, and CALL_LIMIT skips what has no time left."""
    runs = ["cpu-smoke", "cpu-smoke-fused", "cpu-smoke-hf", "cpu-smoke-eager"]
    env = {
        **os.environ,
        "OUT": str(tmp_path / "out"),
        "CKPT": str(tmp_path / "ckpt"),
        "DATA": str(tmp_path / "data"),
        "GPUS": "cpu,cpu",
        "WHEELS": "0",
        "SYNTH_PRESET": "tiny",
        "CAP_GB": "0.002",
        "PYTHON": sys.executable,
        "CALL_LIMIT": "1800",
        "GROUPED_STEPS": "3",
    }
    script = str(ROOT / "bench" / "gpu" / "gpu70b.sh")
    result = subprocess.run(
        ["bash", script, *runs], env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    data = tmp_path / "data"
    assert {p.name for p in data.glob("*.jsonl")} == {"v5.jsonl", "v5-4096.jsonl", "v5-grouped.jsonl"}
    # a warm-up step + 3 steps
    assert len((data / "v5-grouped.jsonl").read_text().splitlines()) == 4 * (1 + 3)
    assert (tmp_path / "out" / "gpu70b.tgz").exists()
    text = load_bench("report70b").render([(tmp_path / "out", runs, "smoke")], "smoke")
    assert "| cpu-smoke | rc=0 wall_seconds=" in text and "gpu=cpu |" in text
    assert (
        "failed: config error: " in text
        and "cpu-smoke-eager.yml: attn_implementation: eager at 256 tokens" in text
    )
    assert "| cpu-smoke-fused | cpu-smoke | 2 | yes |" in text  # fused: the same rows, step by step
    assert "† Measured while other runs trained on the same card" in text  # two lanes, side by side
    hf = json.loads((tmp_path / "out" / "work" / "cpu-smoke-hf.report.json").read_text())
    assert hf["engine"] == "hf" and hf["global_step"] == 2

    before = {p: p.stat().st_mtime_ns for p in [tmp_path / "ckpt", *data.glob("*.jsonl")]}
    again = subprocess.run(
        ["bash", script, "cpu-smoke"],
        env={**env, "CALL_LIMIT": "1", "OUT": str(tmp_path / "out2")},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert "synth_seconds: 0" in (tmp_path / "out2" / "work" / "env.txt").read_text()
    assert again.stdout.count("reused ") == 3 and before == {p: p.stat().st_mtime_ns for p in before}
    assert (tmp_path / "out2" / "work" / "cpu-smoke.rc").read_text().startswith("rc=skipped")
