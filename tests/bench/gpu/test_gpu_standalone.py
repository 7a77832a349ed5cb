"""bench/gpu/standalone.py --engine hf (the stock transformers + peft row of the GPU report) on a tiny NF4
checkpoint, on the CPU: it trains the config gpu70b.sh writes and leaves the plugin's run report."""

import json
import os
import subprocess
import sys

import pytest
import yaml
from axolotl_launch import OFFLINE_ENV, ROOT

from axolotl_nextai.models.synth import PRESETS, write_synthetic_llama


@pytest.mark.slow
def test_stock_engine_trains_the_run_config_and_reports_like_the_plugin(tmp_path):
    sys.path.insert(0, str(ROOT / "bench" / "gpu"))
    from transformers import AutoTokenizer
    from v5_shaped import make_rows

    checkpoint = write_synthetic_llama(PRESETS["tiny"], tmp_path / "nf4", quantize=True, device="cpu")
    rows = make_rows(AutoTokenizer.from_pretrained(checkpoint), 16, scale=0.25)
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    cfg = tmp_path / "cfg.yml"
    subprocess.run(
        [
            sys.executable,
            "bench/gpu/run_config.py",
            "stock-grouped",
            "--out",
            str(cfg),
            "--set",
            f"base_model={checkpoint}",
            "--set",
            "max_steps=3",
            "--set",
            "sequence_len=256",
            "--set",
            f"output_dir={tmp_path / 'out'}",
            "--set",
            f"datasets=[{{path: {tmp_path / 'rows.jsonl'}, type: axolotl_nextai.alpaca}}]",
        ],
        cwd=ROOT,
        check=True,
    )
    result = subprocess.run(
        [sys.executable, "bench/gpu/standalone.py", "--engine", "hf", str(cfg)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **OFFLINE_ENV},
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "out" / "nextai_report.json").read_text())
    assert report["global_step"] == 3 and report["loss_finite"] and report["engine"] == "hf"
    # micro-batch 1 x accumulation 4, as the v5 recipe
    assert report["history"][-1]["forward_passes"] == 3 * 4
    assert report["trainable_params"] == 4 * (128 * 4 + 4 * 128 + 256 * 4 + 4 * 128)
    assert yaml.safe_load(cfg.read_text())["lora_target_modules"] == ["o_proj", "down_proj"]
