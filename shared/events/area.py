"""Which areas of the relying application require a second factor."""

from shared.envelope import EventData
from shared.registry import event
from shared.types import AreaName

__all__ = ["AreaProtectionChanged"]


@event
class AreaProtectionChanged(EventData):
    """A user turned protection of an area on or off (``by_default``: set by the default)."""

    TYPE = "area.protection_changed"
    VERSION = 1

    area: AreaName
    protected: bool
    by_default: bool = False
