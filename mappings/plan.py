"""Diff desired writes against the ledger (what we last wrote) and, when given, what the
remote now holds; only what changed becomes a write.

Ownership rules on Jira: we remove only a label we added ourselves (a label a person had put
there stays, and is not ours to remove later); we clear only a field value we set. Flag
comments: at most one per issue per change, naming every customer whose level changed on
it; a change is a level that differs from the one the ledger remembers for that customer
on that issue (the ledger remembers every level it judged there, ok included, so that a
first sight can be told from a change); a first sight is announced only with
``comment_on_first_sight``; and never a level the issue's latest marker for the customer
already shows (a run that crashed after posting). When a person changed what we own,
``[push.jira].policy`` decides: ``enforce`` sets it back, ``respect`` leaves it; either way a
:class:`Conflict` is reported. CRM report records are wholly ours: drift is enforced.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from mappings.dates import utc_date
from mappings.desired import VOLATILE_FIELDS, JiraDesired
from mappings.model import Customer, FlagLevel, SatisfactionFlag, fast_constructor
from mappings.normalise_jira import issue_sort_key
from mappings.rules import CrmPushRules, JiraPushRules
from mappings.text import flag_comment, flag_marker, parse_marker
from mappings.writes import (
    Conflict,
    CrmWrite,
    FieldValue,
    JiraComment,
    JiraLedger,
    JiraWrite,
    Plan,
    RemoteJira,
)

__all__ = [
    "CommentTexts",
    "diff_crm",
    "diff_jira",
    "ledgers_after",
    "remote_flags_from_comments",
]

#: (comments to post, levels to remember, whether the issue's markers are unknown).
_Decision = tuple[tuple[JiraComment, ...], tuple[tuple[str, FlagLevel], ...], bool]
#: Customers named in one comment at most: a body stays well under Jira's 32,767 characters.
CUSTOMERS_PER_COMMENT = 40
#: The ledger entry of an issue we own nothing on (its key is never read).
_OWN_NOTHING = JiraLedger("")
# Made once per written issue on a first sync: the fast constructors (see model).
_new_ledger = fast_constructor(JiraLedger)
_new_write = fast_constructor(JiraWrite)
_label_tuples: dict[tuple[str, ...], tuple[str, ...]] = {}


def _labels(labels: list[str]) -> tuple[str, ...]:
    """A shared tuple of labels (the same one or two labels on thousands of writes)."""
    if not labels:
        return ()
    found = tuple(labels)
    return _label_tuples.setdefault(found, found) if len(_label_tuples) < 64 else found


_NOTHING = JiraDesired(label=None, field_value=None, flags=())


def _same(ours: FieldValue, theirs: object) -> bool:
    """Whether a CRM value holds what we would write (numbers and line ends tolerant)."""
    if ours is None or ours == "":
        return theirs is None or theirs == ""
    if isinstance(ours, bool):
        return theirs is ours
    if isinstance(ours, int | float):
        if isinstance(theirs, bool) or not isinstance(theirs, int | float | str):
            return False
        try:
            return abs(float(theirs) - float(ours)) < 1e-6
        except ValueError:
            return False
    if not isinstance(theirs, str):
        return False
    return theirs.replace("\r\n", "\n").strip() == ours.strip()


def diff_crm(
    desired: Iterable[CrmWrite],
    ledger: Mapping[str, str],
    rules: CrmPushRules,
    remote: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[
    tuple[CrmWrite, ...], tuple[tuple[str, str], ...], tuple[str, ...], tuple[Conflict, ...]
]:
    """(writes, ledger-only updates, stale external ids, conflicts) for the CRM side.

    ``ledger`` maps external id -> digest last written; ``remote`` (reconcile) maps external
    id -> the record as the CRM holds it.
    """
    volatile = frozenset(crm for name, crm in rules.fields if name in VOLATILE_FIELDS)
    writes: list[CrmWrite] = []
    ledger_only: list[tuple[str, str]] = []
    conflicts: list[Conflict] = []
    wanted: set[str] = set()
    for write in sorted(desired, key=lambda w: w.external_id):
        key = write.external_id
        wanted.add(key)
        recorded = ledger.get(key)
        if remote is None:
            if recorded != write.digest:
                writes.append(write)
            continue
        theirs = remote.get(key)
        if theirs is not None:
            differing = [
                name
                for name, value in write.fields
                if name not in volatile and not _same(value, theirs.get(name))
            ]
            if not differing:
                if recorded != write.digest:
                    ledger_only.append((key, write.digest))
                continue
            if recorded == write.digest:
                conflicts.append(Conflict("crm", key, ", ".join(differing), None, None, "enforced"))
        writes.append(write)
    stale = sorted((set(ledger) | set(remote or ())) - wanted)
    return tuple(writes), tuple(ledger_only), tuple(stale), tuple(conflicts)


class CommentTexts:
    """The comments announcing some customers' current levels, built on first use and shared
    by every issue announcing the same ones. Only a customer's current level has a comment."""

    __slots__ = ("_built", "_customers", "_flags")

    def __init__(
        self, flags: Mapping[str, SatisfactionFlag], customers: Mapping[str, Customer]
    ) -> None:
        self._flags = flags
        self._customers = customers
        self._built: dict[tuple[tuple[str, FlagLevel], ...], tuple[JiraComment, ...]] = {}

    def get(self, announced: tuple[tuple[str, FlagLevel], ...]) -> tuple[JiraComment, ...]:
        """One comment naming every (customer, level) of ``announced`` that is the customer's
        current level (the others are left out), or more than one when they are over
        :data:`CUSTOMERS_PER_COMMENT`; () when none is current."""
        built = self._built.get(announced)
        if built is not None:
            return built
        changes = []
        for customer_id, level in announced:
            flag = self._flags.get(customer_id)
            if flag is not None and flag.level == level:
                changes.append((self._customers.get(customer_id), flag, utc_date(flag.since)))
        comments = tuple(
            JiraComment(
                markers=tuple(flag_marker(f.customer_id, f.level) for _, f, _ in chunk),
                body=flag_comment(chunk),
            )
            for chunk in (
                changes[i : i + CUSTOMERS_PER_COMMENT]
                for i in range(0, len(changes), CUSTOMERS_PER_COMMENT)
            )
        )
        self._built[announced] = comments
        return comments


def remote_flags_from_comments(bodies: Iterable[str]) -> tuple[tuple[str, FlagLevel], ...]:
    """Per customer, the level of the latest flag marker among comment bodies (oldest first)."""
    latest: dict[str, FlagLevel] = {}
    for body in bodies:
        for customer_id, level in parse_marker(body):
            latest[customer_id] = level  # type: ignore[assignment]
    return tuple(sorted(latest.items()))


class _JiraDiff:
    """Diffs one issue at a time; collects conflicts."""

    __slots__ = ("_memo", "comments", "conflicts", "enforce", "field_id", "rules")

    def __init__(
        self,
        rules: JiraPushRules,
        field_id: str | None,
        comments: CommentTexts,
    ) -> None:
        self.rules = rules
        self.field_id = field_id
        self.comments = comments
        self.enforce = rules.policy == "enforce"
        self.conflicts: list[Conflict] = []
        # Comment decisions depend only on (desired, recorded, seen) flags, which thousands
        # of issues of one customer share; desired values are shared objects (id is enough).
        self._memo: dict[object, _Decision] = {}

    def _conflict(self, key: str, what: str, ours: str | None, theirs: str | None) -> None:
        action: Literal["enforced", "respected"] = "enforced" if self.enforce else "respected"
        self.conflicts.append(Conflict("jira", key, what, ours, theirs, action))

    def issue(
        self, key: str, want: JiraDesired, old: JiraLedger, remote: RemoteJira | None
    ) -> tuple[JiraWrite | None, JiraLedger]:
        """The write one issue needs (or None) and its ledger entry afterwards."""
        add: list[str] = []
        remove: list[str] = []
        label = old.label
        if old.label is not None and old.label != want.label:
            if remote is None or old.label in remote.labels:
                remove.append(old.label)
            label = None
        if want.label is not None:
            if old.label == want.label:
                if remote is not None and want.label not in remote.labels:
                    self._conflict(key, "label", want.label, None)
                    if self.enforce:
                        add.append(want.label)
            elif remote is None or want.label not in remote.labels:
                add.append(want.label)
                label = want.label
        set_field, field_value = self._field(key, want, old, remote)
        comments, flags, blind = self._comments(want, old, remote)
        ledger = _new_ledger(key, label, field_value, flags)
        if add or remove or set_field is not None or comments:
            write = _new_write(
                key, _labels(add), _labels(remove), set_field, comments, ledger, blind
            )
            return write, ledger
        return None, ledger

    def _field(
        self, key: str, want: JiraDesired, old: JiraLedger, remote: RemoteJira | None
    ) -> tuple[tuple[str, str | None] | None, str | None]:
        field_id = self.field_id
        if field_id is None:
            return None, None  # nothing to own: a field no longer configured is let go
        if remote is not None and not remote.field_known:
            remote = None  # judge the field by the ledger alone
        theirs = remote.field_value if remote is not None else None
        if want.field_value is not None:
            if old.field_value == want.field_value:
                if remote is not None and theirs != want.field_value:
                    self._conflict(key, "field", want.field_value, theirs)
                    if self.enforce:
                        return (field_id, want.field_value), want.field_value
                return None, want.field_value
            if remote is not None and old.field_value is not None and theirs != old.field_value:
                self._conflict(key, "field", old.field_value, theirs)
                if not self.enforce:
                    return None, old.field_value
            elif remote is not None and theirs == want.field_value:
                return None, want.field_value
            return (field_id, want.field_value), want.field_value
        if old.field_value is not None and (remote is None or theirs == old.field_value):
            return (field_id, None), None
        return None, None

    def _comments(self, want: JiraDesired, old: JiraLedger, remote: RemoteJira | None) -> _Decision:
        if not self.rules.comment_on_change:
            return (), (), False
        memo_key = (id(want), old.flags, remote.flags if remote is not None else None)
        decided = self._memo.get(memo_key)
        if decided is None:
            decided = self._memo[memo_key] = self._decide(want, old, remote)
        return decided

    def _decide(self, want: JiraDesired, old: JiraLedger, remote: RemoteJira | None) -> _Decision:
        recorded = dict(old.flags)
        seen = dict(remote.flags) if remote is not None and remote.flags is not None else None
        first_sight = self.rules.comment_on_first_sight
        announced: list[tuple[str, FlagLevel]] = []
        remembered: list[tuple[str, FlagLevel]] = []
        blind = False
        for customer_id, level in want.flags:
            if customer_id in want.quiet:
                continue  # announced on an ancestor of this issue: nothing to remember here
            remembered.append((customer_id, level))
            theirs = seen.get(customer_id) if seen is not None else None
            before = recorded.get(customer_id, theirs)
            if before is None:
                # Never judged here: a first sync, a newly linked issue, a lost state store.
                wanted = first_sight and level != "ok"
                blind = blind or (wanted and seen is None)
            else:
                wanted = before != level
            # Never a level the issue already shows: a run that crashed before its ledger.
            if wanted and theirs != level:
                announced.append((customer_id, level))
        # A customer no longer flagged here (the item is done, or unlinked) keeps its last
        # announced level: reopened at the same level, the item says nothing again (else
        # the second identical comment would be a duplicate, SPEC: once per level change).
        judged = {customer_id for customer_id, _ in want.flags}
        remembered.extend(flag for flag in old.flags if flag[0] not in judged)
        comments = self.comments.get(tuple(announced)) if announced else ()
        return comments, tuple(sorted(remembered)), blind and bool(comments)


def diff_jira(
    desired: Mapping[str, JiraDesired],
    ledger: Mapping[str, JiraLedger],
    rules: JiraPushRules,
    field_id: str | None,
    comments: CommentTexts,
    remote: Mapping[str, RemoteJira] | None = None,
) -> tuple[tuple[JiraWrite, ...], tuple[JiraLedger, ...], tuple[Conflict, ...]]:
    """(writes, ledger-only updates, conflicts) for the Jira side, in canonical issue order.

    ``desired`` is taken to be in canonical order, as :func:`desired_jira` makes it from
    canonically ordered items; ledger entries beyond it make the result sorted afresh.

    Issues in the ledger but no longer desired (unlinked, out of scope, flag cleared) get
    back what we took. With ``remote`` given, an issue missing from it is not visible (or
    deleted) and is left alone.
    """
    differ = _JiraDiff(rules, field_id, comments)
    writes: list[JiraWrite] = []
    ledger_only: list[JiraLedger] = []
    extra = [(key, _NOTHING) for key in ledger if key not in desired]
    in_order = not extra  # desired_jira yields issues in canonical order
    idle: dict[int, bool] = {}
    for key, want in (*desired.items(), *extra):
        seen = None
        if remote is not None:
            seen = remote.get(key)
            if seen is None:
                continue
        old = ledger.get(key)
        if old is None:
            nothing = idle.get(id(want))
            if nothing is None:
                nothing = idle[id(want)] = (
                    want.label is None and want.field_value is None and not _remembers(want, rules)
                )
            if nothing:
                continue  # the common case: nothing to do, nothing owned
            old = _OWN_NOTHING
        write, after = differ.issue(key, want, old, seen)
        if write is not None:
            writes.append(write)
        elif (after.label, after.field_value, after.flags) != (
            old.label,
            old.field_value,
            old.flags,
        ):
            ledger_only.append(after)
    if not in_order:
        writes.sort(key=lambda w: issue_sort_key(w.issue_key))
        ledger_only.sort(key=lambda entry: issue_sort_key(entry.issue_key))
    conflicts = sorted(differ.conflicts, key=lambda c: (issue_sort_key(c.key), c.what))
    return tuple(writes), tuple(ledger_only), tuple(conflicts)


def _remembers(want: JiraDesired, rules: JiraPushRules) -> bool:
    """Whether the issue's ledger keeps levels (so a later change is told from a first
    sight): when comments are on and some customer is announced on the issue itself."""
    return rules.comment_on_change and any(c not in want.quiet for c, _ in want.flags)


def ledgers_after(
    plan: Plan, crm_ledger: Mapping[str, str], jira_ledger: Mapping[str, JiraLedger]
) -> tuple[dict[str, str], dict[str, JiraLedger]]:
    """The ledgers once every write of ``plan`` succeeded (the engine records write by
    write; this is the whole-plan view, for dry runs and tests). Stale CRM records stay."""
    crm = dict(crm_ledger)
    crm.update((write.external_id, write.digest) for write in plan.crm)
    crm.update(plan.crm_ledger)
    jira = dict(jira_ledger)
    for entry in (*(write.ledger for write in plan.jira), *plan.jira_ledger):
        if entry.is_empty:
            jira.pop(entry.issue_key, None)
        else:
            jira[entry.issue_key] = entry
    return crm, jira
