"""Energy per epoch and per step window for a PyTorch Lightning ``Trainer``.

    from wattprint.integrations.lightning import WattprintCallback
    cb = WattprintCallback(every_n_steps=100, zone="FR")
    trainer = lightning.Trainer(callbacks=[cb])
    trainer.fit(model)
    cb.report.energy_j, cb.epochs, cb.step_windows

Each closed window is sent to every ``trainer.loggers`` entry (``log_metrics``) as
``wattprint.epoch.energy_j``, ``wattprint.steps.energy_j``, ..., and, with
``mlflow=MlflowLogger(...)``, to MLflow. Importing this module imports ``lightning.pytorch``
(or ``pytorch_lightning``).
"""

try:
    from lightning.pytorch import Callback as _Base
except ImportError:
    try:
        from pytorch_lightning import Callback as _Base
    except ImportError as err:  # pragma: no cover - depends on the user's environment
        raise ImportError(
            "wattprint.integrations.lightning needs `lightning` (or `pytorch_lightning`): "
            "pip install lightning"
        ) from err

from .._track import report_progress
from ._windows import EnergyWindows


class WattprintCallback(_Base):
    """A Lightning ``Callback`` measuring fitting, each training epoch and every
    ``every_n_steps`` training batches (default 50).

    After ``fit``: ``report`` (the whole fit's :class:`wattprint.Report`, also when fitting
    raised), ``epochs`` and ``step_windows`` (lists of dicts with ``energy_j``, ``carbon_g``,
    ``duration_s``). Options (``zone``, ``pue``, ...) are those of :func:`wattprint.track`.
    """

    def __init__(self, every_n_steps=50, *, meter=None, mlflow=None, **options):
        super().__init__()
        self.windows = EnergyWindows(every_n_steps, meter=meter, mlflow=mlflow, options=options)
        self._trainer = None
        self.windows.listeners.append(self._to_loggers)

    @property
    def report(self):
        return self.windows.report

    @property
    def epochs(self):
        return self.windows.epochs

    @property
    def step_windows(self):
        return self.windows.step_windows

    def _to_loggers(self, metrics, step):
        trainer = self._trainer
        if trainer is None:
            return
        for logger in getattr(trainer, "loggers", None) or ():
            logger.log_metrics(metrics, step=step if step is not None else trainer.global_step)

    def on_train_start(self, trainer, pl_module):
        self._trainer = trainer
        self.windows.train_begin()

    def on_train_epoch_start(self, trainer, pl_module):
        self._trainer = trainer
        self.windows.epoch_begin(trainer.current_epoch)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.windows.step_begin()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.windows.step_end(trainer.global_step)
        # Under `wattprint run`: progress for its forecast at completion.
        total = getattr(trainer, "estimated_stepping_batches", None)
        if isinstance(total, (int, float)) and 0 < total < float("inf"):
            report_progress(min(trainer.global_step, total), total)

    def on_train_epoch_end(self, trainer, pl_module):
        self.windows.epoch_end(trainer.current_epoch, trainer.global_step)

    def on_train_end(self, trainer, pl_module):
        self.windows.train_end(trainer.global_step)

    def on_exception(self, trainer, pl_module, exception):
        # The report exists even when fitting fails; Lightning re-raises the exception.
        self.windows.train_end(trainer.global_step)
