"""The transformers and Lightning callbacks, driven by stand-in trainers (tests/standins) that
call the hooks in the real frameworks' order; every step burns a known number of joules on
the fake RAPL counter, so each epoch and step window has an exact expected energy."""

import pathlib
import subprocess
import sys

import pytest

STANDINS = pathlib.Path(__file__).parent / "standins"


@pytest.fixture
def standins(monkeypatch):
    monkeypatch.syspath_prepend(str(STANDINS))
    for name in list(sys.modules):
        if name.split(".")[0] in ("transformers", "lightning") or name.startswith(
            "wattprint.integrations."
        ):
            monkeypatch.delitem(sys.modules, name)
    yield


def test_importing_wattprint_imports_no_framework_and_nothing_heavy():
    code = (
        "import sys, wattprint; heavy = {'transformers', 'lightning', 'pytorch_lightning', "
        "'torch', 'mlflow', 'urllib', 'json', 'inspect', 'threading', 'asyncio'}; "
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=STANDINS)  # stand-ins importable, yet not imported
    assert out.stdout.strip() == "[]", out.stdout


def test_transformers_callback_epochs_and_step_windows(standins, rapl):
    import transformers
    from wattprint.integrations.transformers import WattprintCallback

    cb = WattprintCallback()  # step windows default to logging_steps
    assert isinstance(cb, transformers.TrainerCallback)
    args = transformers.TrainingArguments(num_train_epochs=2, logging_steps=2)
    # 5 optimizer steps per epoch; step s of epoch e burns (e + 1) J.
    trainer = transformers.Trainer(
        args, [cb], micro_steps_per_epoch=5, train_step=lambda e, s: rapl.add_j(e + 1.0)
    )
    trainer.train()

    assert [round(r["energy_j"], 6) for r in cb.epochs] == [5.0, 10.0]
    assert [r["epoch"] for r in cb.epochs] == [0, 1]
    # Windows of 2 optimizer steps across the epoch boundary, the last one partial.
    assert [(r["first_step"], r["last_step"]) for r in cb.step_windows] == [
        (1, 2), (3, 4), (5, 6), (7, 8), (9, 10)
    ]
    assert [round(r["energy_j"], 6) for r in cb.step_windows] == [2.0, 2.0, 3.0, 4.0, 4.0]
    assert cb.report.energy_j == pytest.approx(15.0, abs=1e-6)
    # Closed windows are in the Trainer's log history (saved with checkpoints).
    hist = trainer.state.log_history
    steps = [h for h in hist if "wattprint.steps.energy_j" in h]
    assert [h["step"] for h in steps] == [2, 4, 6, 8, 10]
    assert steps[0]["wattprint.steps.energy_j"] == pytest.approx(2.0, abs=1e-6)
    epochs = [h for h in hist if "wattprint.epoch.energy_j" in h]
    assert [h["step"] for h in epochs] == [5, 10]
    assert any("loss" in h for h in hist)


def test_transformers_callback_with_gradient_accumulation(standins, rapl):
    import transformers
    from wattprint.integrations.transformers import WattprintCallback

    cb = WattprintCallback(every_n_steps=1)
    args = transformers.TrainingArguments(
        num_train_epochs=1, logging_steps=10, gradient_accumulation_steps=2
    )
    trainer = transformers.Trainer(
        args, [cb], micro_steps_per_epoch=4, train_step=lambda e, s: rapl.add_j(1.0)
    )
    trainer.train()
    assert "on_substep_end" in trainer.calls
    # 2 optimizer steps of 2 micro-batches each.
    assert [round(r["energy_j"], 6) for r in cb.step_windows] == [2.0, 2.0]
    assert cb.report.energy_j == pytest.approx(4.0, abs=1e-6)


def test_transformers_callback_rejects_bad_step_counts(standins, rapl):
    from wattprint.integrations.transformers import WattprintCallback

    for bad in (0, -3, 2.5, "10", True):
        with pytest.raises(ValueError, match="every_n_steps"):
            WattprintCallback(every_n_steps=bad)


def test_lightning_callback_logs_to_the_trainer_loggers(standins, rapl):
    import lightning.pytorch as pl
    from wattprint.integrations.lightning import WattprintCallback

    cb = WattprintCallback(every_n_steps=3)
    assert isinstance(cb, pl.Callback)
    logger = pl.RecordingLogger()
    trainer = pl.Trainer(max_epochs=2, batches_per_epoch=4, callbacks=[cb], loggers=[logger])
    trainer.fit(lambda epoch, i: rapl.add_j(0.5))

    assert [round(r["energy_j"], 6) for r in cb.epochs] == [2.0, 2.0]
    assert [round(r["energy_j"], 6) for r in cb.step_windows] == [1.5, 1.5, 1.0]
    assert [r["steps"] for r in cb.step_windows] == [3, 3, 2]
    assert cb.report.energy_j == pytest.approx(4.0, abs=1e-6)
    keys = [k for _, row in logger.rows for k in row]
    assert keys.count("wattprint.epoch.energy_j") == 2
    assert keys.count("wattprint.steps.energy_j") == 3
    steps = [step for step, row in logger.rows if "wattprint.epoch.energy_j" in row]
    assert steps == [4, 8]


def test_lightning_callback_reports_when_fit_raises(standins, rapl):
    import lightning.pytorch as pl
    from wattprint.integrations.lightning import WattprintCallback

    cb = WattprintCallback(every_n_steps=10)
    trainer = pl.Trainer(max_epochs=3, batches_per_epoch=2, callbacks=[cb])

    def step(epoch, i):
        rapl.add_j(1.0)
        if epoch == 1 and i == 1:
            raise RuntimeError("loss is nan")

    with pytest.raises(RuntimeError, match="loss is nan"):
        trainer.fit(step)
    assert cb.report is not None
    assert cb.report.energy_j == pytest.approx(4.0, abs=1e-6)
    assert [round(r["energy_j"], 6) for r in cb.epochs] == [2.0, 2.0]


def test_callbacks_report_progress_under_wattprint_run(standins, rapl, tmp_path, monkeypatch):
    import lightning.pytorch as pl
    import transformers
    from wattprint import _track
    from wattprint.integrations.lightning import WattprintCallback as LightningCallback
    from wattprint.integrations.transformers import WattprintCallback

    path = tmp_path / "work"
    monkeypatch.setenv("WATTPRINT_WORK_FILE", str(path))
    monkeypatch.setattr(_track, "_last_progress", [None])
    args = transformers.TrainingArguments(num_train_epochs=2, logging_steps=2)
    transformers.Trainer(
        args, [WattprintCallback()], micro_steps_per_epoch=5, train_step=lambda e, s: None
    ).train()
    assert path.read_text().splitlines() == [f"step={k} total=10" for k in range(1, 11)]

    path.unlink()
    monkeypatch.setattr(_track, "_last_progress", [None])
    trainer = pl.Trainer(max_epochs=1, batches_per_epoch=4, callbacks=[LightningCallback()])
    trainer.fit(lambda e, i: None)
    assert path.read_text().splitlines() == [f"step={k} total=4" for k in range(1, 5)]

