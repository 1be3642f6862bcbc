"""Stand-in for `transformers`: the TrainerCallback interface and a Trainer loop that calls the
hooks in the order `Trainer._inner_training_loop` (transformers 4.4x) does, with gradient
accumulation and logging every `logging_steps`. Not the real package."""


class TrainerControl:
    should_log = False


class TrainerState:
    def __init__(self):
        self.global_step = 0
        self.max_steps = 0
        self.epoch = 0.0
        self.log_history = []


class TrainingArguments:
    def __init__(self, num_train_epochs=2, logging_steps=2, gradient_accumulation_steps=1):
        self.num_train_epochs = num_train_epochs
        self.logging_steps = logging_steps
        self.gradient_accumulation_steps = gradient_accumulation_steps


class TrainerCallback:
    def on_init_end(self, args, state, control, **kwargs): pass
    def on_train_begin(self, args, state, control, **kwargs): pass
    def on_train_end(self, args, state, control, **kwargs): pass
    def on_epoch_begin(self, args, state, control, **kwargs): pass
    def on_epoch_end(self, args, state, control, **kwargs): pass
    def on_step_begin(self, args, state, control, **kwargs): pass
    def on_pre_optimizer_step(self, args, state, control, **kwargs): pass
    def on_optimizer_step(self, args, state, control, **kwargs): pass
    def on_substep_end(self, args, state, control, **kwargs): pass
    def on_step_end(self, args, state, control, **kwargs): pass
    def on_evaluate(self, args, state, control, **kwargs): pass
    def on_save(self, args, state, control, **kwargs): pass
    def on_log(self, args, state, control, **kwargs): pass


class Trainer:
    """`train_step(epoch, micro_step)` stands for one forward/backward micro-batch."""

    def __init__(self, args, callbacks, micro_steps_per_epoch, train_step):
        self.args = args
        self.callbacks = list(callbacks)
        self.micro_steps = micro_steps_per_epoch
        self.train_step = train_step
        self.state = TrainerState()
        self.control = TrainerControl()
        self.calls = []

    def _event(self, name, **kwargs):
        self.calls.append(name)
        for cb in self.callbacks:
            out = getattr(cb, name)(self.args, self.state, self.control, **kwargs)
            if out is not None:
                self.control = out

    def log(self, logs):
        output = {**logs, "step": self.state.global_step}
        self.state.log_history.append(output)
        self._event("on_log", logs=logs)

    def train(self):
        args, state = self.args, self.state
        ga = args.gradient_accumulation_steps
        # As the real Trainer: optimizer steps of the whole run, known before it starts.
        state.max_steps = args.num_train_epochs * -(-self.micro_steps // ga)
        self._event("on_train_begin")
        for epoch in range(args.num_train_epochs):
            self._event("on_epoch_begin")
            for step in range(self.micro_steps):
                if step % ga == 0:
                    self._event("on_step_begin")
                self.train_step(epoch, step)
                if (step + 1) % ga != 0 and step + 1 != self.micro_steps:
                    self._event("on_substep_end")
                    continue
                self._event("on_pre_optimizer_step")
                self._event("on_optimizer_step")
                state.global_step += 1
                state.epoch = epoch + (step + 1) / self.micro_steps
                self._event("on_step_end")
                if state.global_step % args.logging_steps == 0:
                    self.log({"loss": 1.0 / state.global_step})
            self._event("on_epoch_end")
        self._event("on_train_end")
