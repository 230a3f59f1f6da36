"""The result of a validation: errors block, warnings are said and do not block."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ValidationResult:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def extend(self, other: ValidationResult) -> None:
        self.errors += other.errors
        self.warnings += other.warnings
