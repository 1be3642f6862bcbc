"""Stand-in for `lightning.pytorch`: the Callback interface and a Trainer.fit loop calling the
hooks in the order Lightning 2.x's fit loop does (setup, on_fit_start, on_train_start,
per epoch on_train_epoch_start, per batch on_train_batch_start/end, on_train_epoch_end,
on_train_end, on_fit_end, teardown; on_exception when the loop raises). Not the real package."""


class Callback:
    def setup(self, trainer, pl_module, stage): pass
    def teardown(self, trainer, pl_module, stage): pass
    def on_fit_start(self, trainer, pl_module): pass
    def on_fit_end(self, trainer, pl_module): pass
    def on_train_start(self, trainer, pl_module): pass
    def on_train_end(self, trainer, pl_module): pass
    def on_train_epoch_start(self, trainer, pl_module): pass
    def on_train_epoch_end(self, trainer, pl_module): pass
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx): pass
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx): pass
    def on_before_backward(self, trainer, pl_module, loss): pass
    def on_after_backward(self, trainer, pl_module): pass
    def on_before_optimizer_step(self, trainer, pl_module, optimizer): pass
    def on_validation_epoch_start(self, trainer, pl_module): pass
    def on_validation_epoch_end(self, trainer, pl_module): pass
    def on_exception(self, trainer, pl_module, exception): pass


class RecordingLogger:
    def __init__(self):
        self.rows = []

    def log_metrics(self, metrics, step):
        self.rows.append((step, dict(metrics)))


class Trainer:
    """`training_step(epoch, batch_idx)` stands for one batch; it may raise."""

    def __init__(self, max_epochs, batches_per_epoch, callbacks, loggers=()):
        self.max_epochs = max_epochs
        self.batches = batches_per_epoch
        self.callbacks = list(callbacks)
        self.loggers = list(loggers)
        self.global_step = 0
        self.current_epoch = 0
        # As the real Trainer's property: optimizer steps of the whole fit.
        self.estimated_stepping_batches = max_epochs * batches_per_epoch
        self.calls = []

    def _hook(self, name, *args):
        self.calls.append(name)
        for cb in self.callbacks:
            getattr(cb, name)(self, None, *args)

    def fit(self, training_step):
        self._hook("setup", "fit")
        try:
            self._hook("on_fit_start")
            self._hook("on_train_start")
            for epoch in range(self.max_epochs):
                self.current_epoch = epoch
                self._hook("on_train_epoch_start")
                for i in range(self.batches):
                    self._hook("on_train_batch_start", None, i)
                    out = training_step(epoch, i)
                    self._hook("on_before_backward", out)
                    self._hook("on_after_backward")
                    self._hook("on_before_optimizer_step", None)
                    self.global_step += 1
                    self._hook("on_train_batch_end", out, None, i)
                self._hook("on_validation_epoch_start")
                self._hook("on_validation_epoch_end")
                self._hook("on_train_epoch_end")
            self._hook("on_train_end")
            self._hook("on_fit_end")
        except BaseException as exc:
            self._hook("on_exception", exc)
            raise
        finally:
            self._hook("teardown", "fit")
