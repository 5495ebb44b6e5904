"""Battery model specifications the simulator can play.

Figures come from docs/protocol-notes.md (§1.7, §3.6) and the manuals' specifications
(Pylontech US2000 user manual 2.2, SR48100H operation and maintenance manual 3.3.2, BAT/50002
manual specifications): cell counts, capacities, RS485 "user-defined" item counts, console ``pwr`` layouts and the identity strings
seen in public captures. Where no capture exists (US3000C console, SR48100H) the values are
plausible choices, marked as such.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSpec:
    """Static facts about one battery model."""

    name: str  # the name used on the command line and in Bank/Module.model
    device_name: str  # RS485 0x51 / console `info` "Device name"
    cells: int
    capacity_ah: float
    temperature_sensors: int  # RS485 0x42/0x44 temperature count (6th = MOSFET)
    user_defined: int  # RS485 0x42 user-defined item count (2 or 4)
    console_layout: str  # "A", "B" or "C" (`pwr` header layout)
    console_slots: int  # rows printed by `pwr` (8 or 16)
    has_mosfet_sensor: bool  # console MosTempr column carries a value
    max_modules: int  # per group
    recommended_current: float  # A per module (0x92 CCL, pwrsys "Recommend")
    max_charge_current: float  # A (console `info`, 0x47)
    max_discharge_current: float  # A, positive magnitude
    board_version: str
    board: str | None  # console `info` "Board" line, when the firmware prints it
    main_soft_version: str
    soft_version: tuple[int, int]  # 0x51 software version = console "Soft  version"
    boot_version: str
    release_date: str
    manufacturer_version: tuple[int, int]  # 0x96 (= soft_version: RS485 firmware text)
    mainline_version: tuple[int, int, int]  # 0x96
    barcode_prefix: str
    clock_chip: str  # console `time`: "Ds3231" or "RTC"
    specification: str  # console `info` "Specification"
    # 0x47 system parameters
    cell_high_voltage: float = 3.65
    cell_low_voltage: float = 3.05
    cell_under_voltage: float = 2.9
    charge_high_temperature: float = 60.0
    charge_low_temperature: float = -10.0
    discharge_high_temperature: float = 60.0
    discharge_low_temperature: float = -10.0
    # RS485 0x61 (V3.5 "system analog data", docs/protocol-notes.md §1.8): no capture shows which
    # firmware answers it; the simulator lets the newest family here (US5000) answer it and
    # the others refuse it with RTN 0x04, as V3.3 firmware does for an unknown CID2.
    system_analog: bool = False

    @property
    def nominal_voltage(self) -> float:
        """Nominal module voltage (3.2 V per LFP cell)."""
        return round(3.2 * self.cells, 1)

    @property
    def module_high_voltage(self) -> float:
        """Module high-voltage alarm limit (0x47), V."""
        return round(3.6 * self.cells, 1)

    @property
    def module_low_voltage(self) -> float:
        """Module low-voltage alarm limit (0x47), V."""
        return round(3.0667 * self.cells, 1)

    @property
    def module_under_voltage(self) -> float:
        """Module under-voltage protection limit (0x47), V."""
        return round(2.9 * self.cells, 1)


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="US2000B",
            device_name="US2000B",
            cells=15,
            capacity_ah=50.0,
            temperature_sensors=5,
            user_defined=2,
            console_layout="A",
            console_slots=8,
            has_mosfet_sensor=False,
            max_modules=8,
            recommended_current=25.0,
            max_charge_current=102.0,
            max_discharge_current=100.0,
            board_version="PHANTOMSAV10R03",
            board=None,
            main_soft_version="B67.9.0",
            soft_version=(2, 8),
            boot_version="V2.0",
            release_date="21-04-29",
            manufacturer_version=(2, 8),
            mainline_version=(0, 6, 5),
            barcode_prefix="PPTBH",
            clock_chip="RTC",
            specification="48V/50AH",
            charge_high_temperature=61.0,
            charge_low_temperature=-11.0,
            discharge_high_temperature=61.0,
            discharge_low_temperature=-11.0,
        ),
        ModelSpec(
            name="US2000C",
            device_name="US2000C",
            cells=15,
            capacity_ah=50.0,
            temperature_sensors=5,
            user_defined=2,
            console_layout="B",
            console_slots=16,
            has_mosfet_sensor=True,
            max_modules=16,
            recommended_current=25.0,
            max_charge_current=90.0,
            max_discharge_current=90.0,
            board_version="V10R04",
            board=None,
            main_soft_version="B67.5.0",
            soft_version=(1, 7),
            boot_version="V2.1",
            release_date="21-09-26",
            manufacturer_version=(1, 7),
            mainline_version=(0, 6, 7),
            barcode_prefix="HPTCR",
            clock_chip="RTC",
            specification="48V/50AH",
        ),
        ModelSpec(
            name="US3000C",
            device_name="US3000C",
            cells=15,
            capacity_ah=74.0,
            temperature_sensors=5,
            user_defined=4,
            console_layout="B",
            console_slots=16,
            has_mosfet_sensor=True,
            max_modules=16,
            recommended_current=37.0,
            max_charge_current=90.0,
            max_discharge_current=90.0,
            board_version="V10R04",
            board=None,
            main_soft_version="B68.2.0.0",
            soft_version=(1, 3),
            boot_version="V2.1",
            release_date="22-03-15",
            manufacturer_version=(1, 3),
            mainline_version=(0, 6, 9),
            barcode_prefix="HPTDC",
            clock_chip="RTC",
            specification="48V/74AH",
            cell_under_voltage=2.8,
        ),
        ModelSpec(
            name="US5000",
            device_name="US5000",
            cells=15,
            capacity_ah=100.0,
            temperature_sensors=6,
            user_defined=4,
            console_layout="B",
            console_slots=16,
            has_mosfet_sensor=True,
            max_modules=16,
            recommended_current=80.0,
            max_charge_current=100.0,
            max_discharge_current=100.0,
            board_version="V10R04",
            board="NF4.E3",
            main_soft_version="B69.16.0.0",
            soft_version=(1, 3),
            boot_version="V1.0",
            release_date="22-08-10",
            manufacturer_version=(1, 3),
            mainline_version=(0, 7, 2),
            barcode_prefix="YPTEA",
            clock_chip="Ds3231",
            specification="48V/100AH",
            cell_under_voltage=2.8,
            system_analog=True,
        ),
        ModelSpec(
            name="SR48100H",
            device_name="SR48100H",
            cells=16,
            capacity_ah=100.0,
            temperature_sensors=5,
            user_defined=4,
            console_layout="B",
            console_slots=16,
            has_mosfet_sensor=True,
            max_modules=32,
            recommended_current=50.0,
            max_charge_current=70.0,
            max_discharge_current=100.0,
            board_version="V10R01",
            board=None,
            main_soft_version="B70.1.0.0",
            soft_version=(1, 1),
            boot_version="V1.0",
            release_date="23-05-02",
            manufacturer_version=(1, 1),
            mainline_version=(0, 1, 0),
            barcode_prefix="SPTSR",
            clock_chip="RTC",
            specification="51.2V/100AH",
            charge_low_temperature=-10.0,
            discharge_low_temperature=-20.0,
            discharge_high_temperature=50.0,
            charge_high_temperature=50.0,
        ),
    )
}


def model_spec(name: str) -> ModelSpec:
    """The spec of a model by (case-insensitive) name; ``ValueError`` names the known ones."""
    for key, spec in MODELS.items():
        if key.lower() == name.strip().lower():
            return spec
    raise ValueError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
