"""Epoch and step-window bookkeeping shared by the framework callbacks (no framework import)."""

from .._track import _pick_meter


def _summary(report, **extra):
    row = dict(extra)
    row["energy_j"] = report.energy_j
    row["carbon_g"] = report.carbon_g
    row["duration_s"] = report.duration_s
    return row


def check_every_n_steps(n):
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"every_n_steps must be an int >= 1, got {n!r}")
    return n


class EnergyWindows:
    """Training, epoch and every-``every_n_steps`` step windows on one meter.

    Each closed window appends a row (``energy_j``, ``carbon_g``, ``duration_s`` and its epoch
    or step range) to ``epochs`` or ``step_windows``, and calls ``on_row(kind, row, step)``.
    """

    def __init__(self, every_n_steps, meter=None, mlflow=None, options=None):
        self.every_n_steps = check_every_n_steps(every_n_steps)
        self.listeners = []
        self.meter = _pick_meter(meter, dict(options or {}))
        self.mlflow = mlflow
        self.epochs = []
        self.step_windows = []
        self.report = None
        self._train = None
        self._epoch = None
        self._epoch_index = None
        self._steps = None
        self._n_steps = 0
        self._first_step = None
        self._last_step = None

    # -- training
    def train_begin(self):
        if self._train is None:
            self._train = self.meter.begin("train")

    def train_end(self, step):
        self.epoch_end(self._epoch_index, step)
        self._close_steps(step)
        if self._train is not None:
            w, self._train = self._train, None
            self.report = self.meter.end(w)
            if self.mlflow is not None:
                self.mlflow.log_report(self.report, step=step)
        return self.report

    # -- epochs
    def epoch_begin(self, epoch):
        self.train_begin()
        if self._epoch is not None:  # an epoch never ended: close it first
            self.epoch_end(self._epoch_index, None)
        self._epoch_index = epoch
        self._epoch = self.meter.begin(f"epoch {epoch}")

    def epoch_end(self, epoch, step):
        if self._epoch is None:
            return None
        w, self._epoch = self._epoch, None
        r = self.meter.end(w)
        row = _summary(r, epoch=self._epoch_index if epoch is None else epoch)
        self.epochs.append(row)
        self._emit("epoch", row, step)
        return row

    # -- steps
    def step_begin(self):
        self.train_begin()
        if self._steps is None:
            self._steps = self.meter.begin("steps")
            self._n_steps = 0
            self._first_step = None

    def step_end(self, step):
        if self._steps is None:
            return None
        self._n_steps += 1
        if self._first_step is None:
            self._first_step = step
        self._last_step = step
        if self._n_steps >= self.every_n_steps:
            return self._close_steps(step)
        return None

    def _close_steps(self, step):
        if self._steps is None:
            return None
        w, self._steps = self._steps, None
        r = self.meter.end(w)
        if not self._n_steps:  # opened, but no step finished in it: nothing to report
            return None
        row = _summary(
            r, first_step=self._first_step, last_step=self._last_step, steps=self._n_steps
        )
        self.step_windows.append(row)
        self._emit("steps", row, self._last_step)
        return row

    def _emit(self, kind, row, step):
        metrics = metrics_of(kind, row)
        for listener in self.listeners:
            listener(metrics, step)
        if self.mlflow is not None:
            self.mlflow.log_metrics(metrics, step=step)


def metrics_of(kind, row):
    """``{"wattprint.epoch.energy_j": ..., ...}``: a row's unit-named numbers, for loggers."""
    return {f"wattprint.{kind}.{k}": v for k, v in row.items() if k.endswith(("_j", "_g", "_s"))}
