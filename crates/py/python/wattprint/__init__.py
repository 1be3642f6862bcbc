"""wattprint: measure the energy and carbon of AI training and inference.

    import wattprint
    with wattprint.track() as t:
        train()
    print(t.report.energy_j, "J", t.report.carbon_g, "g CO2e")

The measuring is done in Rust (``wattprint._wattprint``), with the GIL released while it reads
sensors. Framework integrations are imported only when used:
``wattprint.integrations.transformers``, ``wattprint.integrations.lightning``,
``wattprint.integrations.mlflow``.
"""

from ._wattprint import Meter, Report, Window, WattprintError, WindowError, __version__
from ._track import add_work, report_progress, track

__all__ = [
    "Meter",
    "Report",
    "Window",
    "WattprintError",
    "WindowError",
    "__version__",
    "add_work",
    "report_progress",
    "track",
]
