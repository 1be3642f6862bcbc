"""Type stubs of the Rust extension (see docs/python.md)."""

import os
from typing import Any, Dict, List, Optional, Sequence, Union

__version__: str

class WattprintError(Exception): ...
class WindowError(ValueError): ...

class Window:
    @property
    def name(self) -> str: ...

class Report:
    @property
    def energy_j(self) -> float: ...
    @property
    def facility_energy_j(self) -> float: ...
    @property
    def energy_j_low(self) -> Optional[float]: ...
    @property
    def energy_j_high(self) -> Optional[float]: ...
    @property
    def carbon_g(self) -> float: ...
    @property
    def carbon_g_low(self) -> Optional[float]: ...
    @property
    def carbon_g_high(self) -> Optional[float]: ...
    @property
    def duration_s(self) -> float: ...
    @property
    def pue(self) -> float: ...
    @property
    def domains_j(self) -> Dict[str, float]: ...
    @property
    def energy(self) -> Dict[str, Any]: ...
    @property
    def carbon(self) -> Dict[str, Any]: ...
    @property
    def work(self) -> Dict[str, Any]: ...
    @property
    def metrics(self) -> Dict[str, Any]: ...
    @property
    def overhead(self) -> Dict[str, Any]: ...
    @property
    def warnings(self) -> List[str]: ...
    def to_dict(self) -> Dict[str, Any]: ...
    def to_json(self, indent: Optional[int] = None) -> str: ...

class Meter:
    def __init__(
        self,
        *,
        zone: Optional[str] = ...,
        pue: Optional[float] = ...,
        market_factor_g_per_kwh: Optional[float] = ...,
        intensity_file: Optional[Union[str, os.PathLike]] = ...,
        live: Optional[str] = ...,
        embodied_kg: Optional[float] = ...,
        lifetime_years: Optional[float] = ...,
        share: Optional[float] = ...,
        unit_count: Optional[float] = ...,
        unit_name: Optional[str] = ...,
        flops: Optional[float] = ...,
        params: Optional[float] = ...,
        tokens: Optional[float] = ...,
        mode: Optional[str] = ...,
        inferences: Optional[float] = ...,
        precision: Optional[str] = ...,
        store: Optional[bool] = ...,
        sensors: Optional[List[str]] = ...,
        gpus: Optional[Union[str, int, Sequence[Union[str, int]]]] = ...,
    ) -> None: ...
    def begin(self, name: str = "window") -> Window: ...
    def end(self, window: Window, *, error: Optional[str] = None) -> Report: ...
    def add_work(
        self,
        *,
        inferences: Optional[float] = None,
        tokens: Optional[float] = None,
        flops: Optional[float] = None,
    ) -> None: ...
    @property
    def domains(self) -> List[Dict[str, Any]]: ...

def work_file_lines(
    *,
    inferences: Optional[float] = None,
    tokens: Optional[float] = None,
    flops: Optional[float] = None,
) -> str: ...
