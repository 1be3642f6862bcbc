"""``track()`` (context manager and decorator) and ``add_work()``: Python idioms over ``Meter``."""

import _thread
import contextvars
import os

from ._wattprint import Meter, work_file_lines

# The trackers open in this context (thread or asyncio task), innermost last.
_active = contextvars.ContextVar("wattprint_active", default=())

# One meter per distinct set of options, shared by every track() that uses them: opening a
# meter discovers sensors, which is worth doing once per process, not once per call.
_meters = {}
_meters_lock = _thread.allocate_lock()


def _meter_for(options):
    try:
        # sensors=[...] is a list: its tuple keys the same meter.
        key = tuple(
            sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in options.items())
        )
        hash(key)
    except TypeError:
        # Unhashable option values: let Meter() say what is wrong with them.
        return Meter(**options)
    with _meters_lock:
        meter = _meters.get(key)
        if meter is None:
            meter = Meter(**options)
            _meters[key] = meter
        return meter


class Tracker:
    """One measured block. ``report`` is set when the block ends, also when it raises."""

    __slots__ = ("name", "meter", "report", "_window", "_token")

    def __init__(self, name, meter):
        self.name = name
        self.meter = meter
        self.report = None
        self._window = None
        self._token = None

    def __enter__(self):
        if self._window is not None:
            raise RuntimeError(
                "this track() block is already running; call wattprint.track() again for a new one"
            )
        self.report = None
        self._token = _active.set(_active.get() + (self,))
        self._window = self.meter.begin(self.name)
        return self

    def __exit__(self, exc_type, exc, tb):
        window, self._window = self._window, None
        try:
            _active.reset(self._token)
        except ValueError:
            # Exited in another context than entered (e.g. a generator): drop it by identity.
            _active.set(tuple(t for t in _active.get() if t is not self))
        self._token = None
        try:
            error = None if exc_type is None else getattr(exc_type, "__qualname__", "an exception")
            self.report = self.meter.end(window, error=error)
        except Exception as err:
            if exc_type is None:
                raise
            import warnings

            warnings.warn(f"wattprint: could not end window {self.name!r}: {err}", stacklevel=2)
        return False  # the block's exception, if any, propagates

    def __call__(self, func):
        return _decorate(func, self.name, self.meter)

    def __repr__(self):
        return f"<wattprint.track {self.name!r} report={self.report!r}>"


def _decorate(func, name, meter):
    import functools
    import inspect

    name = name or getattr(func, "__qualname__", None) or "function"
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args, **kwargs):
            t = Tracker(name, meter)
            try:
                with t:
                    return await func(*args, **kwargs)
            finally:
                async_wrapper.last_report = t.report

        async_wrapper.last_report = None
        return async_wrapper

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        t = Tracker(name, meter)
        try:
            with t:
                return func(*args, **kwargs)
        finally:
            wrapper.last_report = t.report

    wrapper.last_report = None
    return wrapper


def track(name=None, *, meter=None, **options):
    """Measure a block or a function; the options mirror ``wattprint run``'s.

    As a context manager::

        with wattprint.track(zone="FR") as t:
            work()
        t.report.energy_j, t.report.carbon_g

    As a decorator (``@wattprint.track`` or ``@wattprint.track(zone="FR")``), each call is
    measured and its report left in ``function.last_report``.

    ``name`` names the window (default ``"track"``, or the function's qualified name);
    ``meter`` measures on a given :class:`wattprint.Meter` instead of the shared one for these
    options. Options: ``zone``, ``pue``, ``flops``, ``params``, ``tokens``, ``mode``,
    ``inferences``, ``precision``, ``store``, ``gpus``, ``sensors`` (a list of names as
    ``WATTPRINT_SENSORS``: ``["model"]``, ``["-rapl-perf", "-nvml"]``). Wrong types raise
    ``TypeError``, bad values
    ``ValueError``, options this build cannot apply ``NotImplementedError``.
    """
    if callable(name):  # bare @wattprint.track
        func = name
        return _decorate(func, None, _pick_meter(meter, options))
    if name is not None and not isinstance(name, str):
        raise TypeError(f"track() name must be a str, not {type(name).__name__}")
    return Tracker(name or "track", _pick_meter(meter, options))


def _pick_meter(meter, options):
    if meter is None:
        return _meter_for(options)
    if not isinstance(meter, Meter):
        raise TypeError(f"meter must be a wattprint.Meter, not {type(meter).__name__}")
    if options:
        raise TypeError(
            "pass options to wattprint.Meter(...) when giving meter=, not to track(): "
            + ", ".join(sorted(options))
        )
    return meter


def add_work(*, inferences=None, tokens=None, flops=None):
    """Record work done so far: counted in every ``track()`` open in this context, and, under
    ``wattprint run``, in the run's report (through ``WATTPRINT_WORK_FILE``)."""
    # Validates (TypeError/ValueError) before anything is recorded anywhere.
    lines = work_file_lines(inferences=inferences, tokens=tokens, flops=flops)
    meters = {}
    for t in _active.get():
        meters[id(t.meter)] = t.meter
    path = os.environ.get("WATTPRINT_WORK_FILE")
    if not meters and not path:
        raise RuntimeError(
            "add_work() outside any wattprint.track() block and not under `wattprint run`: "
            "nothing would count this work; call it inside `with wattprint.track():`, or use "
            "Meter.add_work() on your own meter"
        )
    for m in meters.values():
        m.add_work(inferences=inferences, tokens=tokens, flops=flops)
    if path and lines:
        with open(path, "a", encoding="utf-8") as f:
            f.write(lines)


# The last progress written to the work file by this process (report_progress' throttle).
_last_progress = [None]
# Reports closer than this (a fraction of the whole work) are skipped: at most about 1000
# lines per run, far below the 16 MiB wattprint reads of the work file.
_PROGRESS_STEP = 0.001


def report_progress(step=None, total=None, *, fraction=None):
    """Tell ``wattprint run`` how far the work is, for its forecast of the energy and carbon
    at completion (``--budget-kwh``, ``--stop-over-budget``): ``report_progress(step, total)``
    or ``report_progress(fraction=0.25)``. Writes ``step=N total=M`` or ``progress=F`` to
    ``WATTPRINT_WORK_FILE``; reports less than 0.1 % apart are skipped, the last one
    (``step == total``) never. Returns True when a line was written, False when not under
    ``wattprint run`` or skipped."""
    if fraction is None:
        if step is None or total is None:
            raise TypeError("report_progress(step, total) or report_progress(fraction=F)")
        for name, v in (("step", step), ("total", total)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
                raise ValueError(f"report_progress: {name}={v!r} is not a count (0 or more)")
        if not total > 0 or step > total:
            raise ValueError(
                f"report_progress: step={step} total={total}: the total must be above 0 "
                "and the step at most the total"
            )
        fraction = step / total
        line = f"step={step} total={total}\n"
    else:
        if step is not None or total is not None:
            raise TypeError("report_progress: give step and total, or fraction, not both")
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not (
            0.0 <= fraction <= 1.0
        ):
            raise ValueError(f"report_progress: fraction={fraction!r} is not from 0 to 1")
        line = f"progress={float(fraction)!r}\n"
    path = os.environ.get("WATTPRINT_WORK_FILE")
    if not path:
        return False
    last = _last_progress[0]
    if last is not None and last <= fraction < 1.0 and fraction - last < _PROGRESS_STEP:
        return False
    _last_progress[0] = fraction
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
    return True

