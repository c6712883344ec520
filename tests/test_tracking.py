"""W&B without an API key runs offline, and the stage says where the files are and how to sync."""

from affect_rl import sft, tracking
from affect_rl.config import build_stage_config


def test_wandb_without_key_goes_offline_and_says_how_to_sync(tiny_model_dir, emotion_file, tmp_path,
                                                             monkeypatch, capsys):
    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_DIR", "WANDB_PROJECT"):
        monkeypatch.setenv(name, "")  # recorded, so the variables the stage sets are undone afterwards
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc credentials
    monkeypatch.setattr(tracking, "has_wandb_credentials", lambda: False)
    output_dir = tmp_path / "out"
    values = {"model_name_or_path": tiny_model_dir, "dataset": emotion_file, "task": "emotion",
              "output_dir": str(output_dir), "max_steps": 1, "per_device_train_batch_size": 2,
              "report_to": "wandb", "save_strategy": "no", "num_sample_prompts": 0, "bf16": False}
    sft.train(build_stage_config("sft", values, "test"))

    assert tracking.os.environ["WANDB_MODE"] == "offline"
    runs = list((output_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and any(runs[0].iterdir())
    out = capsys.readouterr().out
    assert f"wandb sync {output_dir.resolve()}/wandb/offline-run-*" in out


def test_online_mode_is_respected(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "online")

    class Args:
        report_to, output_dir = ["wandb"], "x"

    tracking.prepare_tracking(Args)
    assert tracking.os.environ["WANDB_MODE"] == "online"
