"""The audit's result: re-identification rates per attack, never a name or a guess."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

BAR = 0.01  # issue 6: every attack must re-identify at most 1% of records


@dataclass(frozen=True)
class AttackResult:
    """One attack on one target (a name field, or a blocking key).

    ``reidentified``: share of all records whose name the attack got right (needs the
    agency's own input as truth; None otherwise). The ``insider`` attack (pattern
    attack seeded with 50 known names) is only run when truth is given. The ``graph``
    attack (similarity-graph matching) names only the 1,000 most frequent filters per field. ``guessed``: share of records the attack
    put a name on, right or wrong — an upper bound an agency can see without truth.
    """

    attack: str
    target: str
    guessed: float
    reidentified: float | None = None


@dataclass
class AuditReport:
    rows: int
    reference: str
    schema_name: str
    results: list[AttackResult] = field(default_factory=list)
    any_name: dict[str, float] = field(default_factory=dict)  # attack -> share with given OR family right
    token_concentration: dict[str, float] = field(default_factory=dict)  # key -> largest share on one token
    notes: list[str] = field(default_factory=list)
    blind_guess: float | None = None  # share right by naming everyone with the commonest names
    # field -> attack -> per record: guessed right (for the linkage-unit audit; not in to_dict)
    correct: dict = field(default_factory=dict, repr=False)

    @property
    def measured(self) -> bool:
        return bool(self.any_name)

    @property
    def worst(self) -> float | None:
        """Highest measured re-identification rate over attacks (given or family name)."""
        return max(self.any_name.values()) if self.any_name else None

    @property
    def excess(self) -> float | None:
        """Worst rate minus the no-file blind guess: what holding the file adds."""
        if self.worst is None or self.blind_guess is None:
            return None
        return self.worst - self.blind_guess

    @property
    def passes(self) -> bool | None:
        worst = self.worst
        return None if worst is None else worst <= BAR

    def to_dict(self) -> dict:
        doc = asdict(self)
        doc.pop("correct", None)
        doc.update(worst=self.worst, excess=self.excess, passes=self.passes, bar=BAR)
        return doc

    def text(self) -> str:
        lines = [f"simlink audit: {self.rows:,} records, schema '{self.schema_name}', reference: {self.reference}"]
        lines.append(f"{'attack':<12} {'target':<22} {'guessed':>8} {'re-identified':>14}")
        for r in self.results:
            rate = "n/a (no truth)" if r.reidentified is None else f"{r.reidentified:.2%}"
            lines.append(f"{r.attack:<12} {r.target:<22} {r.guessed:>8.2%} {rate:>14}")
        for attack, rate in self.any_name.items():
            lines.append(f"{attack:<12} {'given or family':<22} {'':>8} {rate:>14.2%}")
        if self.blind_guess is not None:
            lines.append(f"{'(no file)':<12} {'commonest names':<22} {'':>8} {self.blind_guess:>14.2%}"
                         "  <- naming everyone with the commonest reference names, for comparison")
        if self.token_concentration:
            top = ", ".join(f"{k} {v:.2%}" for k, v in self.token_concentration.items())
            lines.append(f"largest share of records on one blocking token: {top}")
        if self.passes is None:
            lines.append("risk: not measured (give --truth INPUT, the file that was encoded, to score the guesses); "
                         "'guessed' is an upper bound")
        else:
            verdict = "PASS" if self.passes else "FAIL"
            lines.append(f"risk: {verdict}: worst attack re-identifies {self.worst:.2%} of records (bar {BAR:.0%})")
            if self.excess is not None:
                lines.append(f"      {self.excess:+.2%} over naming everyone with the commonest names, which needs no file")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)
