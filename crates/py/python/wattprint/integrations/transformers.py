"""Energy per epoch and per step window for a Hugging Face ``transformers`` ``Trainer``.

    from wattprint.integrations.transformers import WattprintCallback
    cb = WattprintCallback(zone="FR")
    trainer = Trainer(..., callbacks=[cb])
    trainer.train()
    cb.report.energy_j, cb.epochs, cb.step_windows

Each closed window's numbers are appended to ``state.log_history`` (saved in the checkpoints'
``trainer_state.json``) as ``wattprint.epoch.energy_j``, ``wattprint.steps.energy_j``, ...,
and, with ``mlflow=MlflowLogger(...)``, logged to MLflow. Importing this module imports
``transformers``.
"""

try:
    from transformers import TrainerCallback as _Base
except ImportError as err:  # pragma: no cover - depends on the user's environment
    raise ImportError(
        "wattprint.integrations.transformers needs the `transformers` package: "
        "pip install transformers"
    ) from err

from .._track import report_progress
from ._windows import EnergyWindows, check_every_n_steps


class WattprintCallback(_Base):
    """A ``TrainerCallback`` measuring the training run, each epoch and every
    ``every_n_steps`` optimizer steps (default: the Trainer's ``logging_steps``, else 50).

    After training: ``report`` (the whole run's :class:`wattprint.Report`), ``epochs`` and
    ``step_windows`` (lists of dicts with ``energy_j``, ``carbon_g``, ``duration_s``).
    Options (``zone``, ``pue``, ...) are those of :func:`wattprint.track`.
    """

    def __init__(self, every_n_steps=None, *, meter=None, mlflow=None, **options):
        if every_n_steps is not None:
            check_every_n_steps(every_n_steps)
        self._every = every_n_steps
        self.windows = EnergyWindows(every_n_steps or 1, meter=meter, mlflow=mlflow, options=options)
        self._state = None
        self.windows.listeners.append(self._to_history)

    @property
    def report(self):
        return self.windows.report

    @property
    def epochs(self):
        return self.windows.epochs

    @property
    def step_windows(self):
        return self.windows.step_windows

    def _to_history(self, metrics, step):
        if self._state is not None:
            self._state.log_history.append({**metrics, "step": step})

    def on_train_begin(self, args, state, control, **kwargs):
        self._state = state
        if self._every is None:
            n = getattr(args, "logging_steps", None)
            self.windows.every_n_steps = n if isinstance(n, int) and n >= 1 else 50
        self.windows.train_begin()

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.windows.epoch_begin(len(self.windows.epochs))

    def on_step_begin(self, args, state, control, **kwargs):
        self.windows.step_begin()

    def on_step_end(self, args, state, control, **kwargs):
        self.windows.step_end(state.global_step)
        # Under `wattprint run`: progress for its forecast at completion.
        total = getattr(state, "max_steps", None)
        if isinstance(total, int) and total > 0 and 0 <= state.global_step <= total:
            report_progress(state.global_step, total)

    def on_epoch_end(self, args, state, control, **kwargs):
        self.windows.epoch_end(None, state.global_step)

    def on_train_end(self, args, state, control, **kwargs):
        self.windows.train_end(state.global_step)
