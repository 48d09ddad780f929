"""What the report page is made of: sections of figures, tables and notices.

Every section builder (sections, layers) returns Sections; the template
lays them out. Kept apart so the builders share it without importing each
other.
"""
from dataclasses import dataclass, field


@dataclass
class Section:
    id: str
    title: str
    intro: str = ""
    empty: str = ""                 # shown when the section has no data
    notices: list = field(default_factory=list)   # (level, text): level warn|info
    figures: list = field(default_factory=list)
    tables: list = field(default_factory=list)
    card: list = field(default_factory=list)      # (field, value) rows of a host card
    emulated: bool = False
    subsections: list = field(default_factory=list)

    @property
    def has_data(self):
        return bool(self.figures or self.tables or self.card or self.subsections)
