"""Mutation testing of the modules that carry ir's guarantees, with cosmic-ray, in bounded time.

    pip install -e '.[test,mutation]'        # an editable install: the mutated file is what `ir` imports
    python tools/mutation.py                 # every module, at most --minutes each (default 12)
    python tools/mutation.py timeline values --minutes 5
    python tools/mutation.py --report        # the figures of the sessions so far, and each survivor's diff

cosmic-ray writes each mutant to the source file on disk, runs the module's tests, and puts the file back, so the
tests may run `ir` in a subprocess too; the tests chosen for each module below are the fast ones, mostly in process,
that exercise it (a mutant costs one pytest start and those tests). Do not edit the sources while it runs. Sessions
are kept in build/mutation/<module>.sqlite: a run stopped by its time cap goes on from there the next time
(`--fresh` starts over). The source file is restored from a copy after every run, even an interrupted one.

Which mutants count (docs/testing.md explains each choice):
- every mutant cosmic-ray's core operators make, except that a binary or comparison operator is replaced by its
  nearest neighbours only (`+` by `-`, `<` by `<=` and `>`, `==` by `!=`...), not by every other operator;
- mutants in annotations are not run: with `from __future__ import annotations` they are never evaluated, except
  in pydantic models (which read them), where they are run;
- mutants in the functions listed as out of scope (not a guarantee: `integrations check`) are not run;
- a mutant that survived is counted as equivalent when it is listed in EQUIVALENT (triaged: no test can tell it
  from the original, each with the reason) or is a signature's bare `*` made `/`; a listed one that is killed
  counts as killed.
The score is killed / (run - equivalent).
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SESSIONS = ROOT / "build" / "mutation"


@dataclass(frozen=True)
class Module:
    path: str
    tests: tuple[str, ...]
    out_of_scope: tuple[str, ...] = ()  # function names whose mutants are not run


CHAIN = ("tests/test_chain.py::test_an_untouched_chain_verifies_up_to_its_head",
         "tests/test_chain.py::test_each_field_of_an_event_is_hashed",
         "tests/test_chain.py::test_each_way_a_chain_breaks_names_the_event_and_why",
         "tests/test_chain.py::test_the_head_must_match_in_hash_and_count",
         "tests/test_chain.py::test_the_store_chains_what_it_appends_and_links_read_it_back",
         "tests/test_chain.py::test_the_store_reads_each_field_into_the_hash",
         "tests/test_chain.py::test_an_event_and_a_break_cannot_be_changed_once_made_and_the_chain_starts_at_64_zeros",
         "tests/test_chain.py::test_the_store_verifies_data_stored_in_another_encoding_and_makes_its_folders")
CANONICAL = ("tests/test_properties.py::test_any_event_round_trips_through_its_canonical_encoding_and_verifies",
             "tests/test_properties.py::test_any_one_character_change_to_an_event_breaks_verification",
             "tests/test_properties.py::test_any_change_to_an_events_data_breaks_verification",
             "tests/test_timeline.py::test_the_store_seals_an_event_as_the_chain_is_verified",
             "tests/test_timeline.py::test_an_event_hashes_as_its_canonical_json_whatever_a_tampered_store_holds",
             "tests/test_timeline.py::test_canonical_json_is_json_dumps_with_sorted_keys_and_no_spaces",
             "tests/test_timeline.py::test_canonical_json_refuses_what_json_cannot_write_as_json_dumps_does")
STORE = ("tests/test_reconcile.py::test_an_action_goes_pending_sending_done_and_is_never_sent_or_settled_again",
         "tests/test_reconcile.py::test_a_failed_or_unknown_action_is_tried_again_and_then_done",
         "tests/test_reconcile.py::test_an_action_left_sending_by_a_crash_can_be_settled_and_a_dry_run_is_final",
         "tests/test_reconcile.py::test_the_state_a_change_records_reads_back_as_it_was_written",
         "tests/test_reconcile.py::test_the_store_selects_events_by_kind_and_time_bounds_a_message_and_refuses_what_it_cannot_read",
         "tests/test_reconcile.py::test_the_store_returns_the_event_it_recorded_and_finds_itself_under_ir_home",
         "tests/test_reconcile.py::test_one_holder_at_a_time_and_the_second_is_told_who",
         "tests/test_reconcile.py::test_threads_opening_a_new_store_at_once_all_get_it",
         "tests/test_reconcile.py::test_a_store_switched_to_wal_while_another_connection_holds_it_waits_for_it",
         "tests/test_reconcile.py::test_an_action_is_sent_elsewhere_only_while_it_waits_not_while_it_is_sent_or_once_settled",
         "tests/test_reconcile.py::test_an_incident_is_copied_to_another_store_as_it_is_and_only_once",
         "tests/test_reconcile.py::test_only_the_store_writes_the_seals_of_an_event",
         "tests/test_reconcile.py::test_a_follower_waits_for_new_events_and_reads_only_those",
         "tests/test_reconcile.py::test_a_state_row_edited_outside_ir_is_found_by_the_seal_its_event_carries",
         "tests/test_reconcile.py::test_an_incident_written_to_while_it_is_checked_or_copied_verifies",
         "tests/test_reconcile.py::test_actions_are_in_the_order_they_were_queued_whatever_their_clock_and_a_store_from_before_learns_it")
LIVE = ("tests/test_outbox.py::test_a_live_run_delivers_each_action_once_in_order_and_records_it",
        "tests/test_outbox.py::test_an_unknown_post_is_reconciled_by_flush_and_sent_at_most_once",
        "tests/test_outbox.py::test_a_refused_post_fails_holds_its_integration_back_and_flush_sends_it_once",
        "tests/test_outbox.py::test_an_unknown_ticket_is_found_by_its_label_and_its_comment_waits_for_it",
        "tests/test_outbox.py::test_a_tickets_labels_and_a_links_type_reach_jira")  # the fast ones of test_outbox
SECRETS = "tests/test_secrets.py::test_the_tokens_are_the_secrets_and_the_addresses_and_the_user_are_not"
# The store tests run on both stores; what is not the store's own code is tested on one, at half the cost a mutant.
ONLY_SQLITE, ONLY_POSTGRES = '-k "not postgresql"', '-k "not sqlite"'
MODULES = {
    "timeline": Module("runner/store/timeline.py", CHAIN + CANONICAL),
    "sqlite": Module("runner/store/sqlite.py", CHAIN + STORE + LIVE + (
        "tests/test_drive.py",
        "tests/test_reconcile.py::test_an_sqlite_store_of_a_newer_ir_or_no_store_at_all_is_refused",
        "tests/test_reconcile.py::test_who_drives_is_read_without_touching_the_lock_and_a_killed_drivers_line_is_not_a_driver",
        "tests/test_paths.py::test_a_store_file_others_can_reach_or_a_link_is_refused",
        "tests/test_paths.py::test_a_store_path_that_is_a_folder_or_another_users_file_is_refused",
        "tests/test_paths.py::test_a_lock_file_that_is_a_link_is_refused_by_who_drives_and_by_a_run")),
    # with the team store's lost COMMITs (the shared writes' `committed` and `replayable`)
    "sql": Module("runner/store/sql.py", CHAIN + STORE + LIVE + (
        "tests/test_ahead.py",
        "tests/test_postgres_store.py::test_a_write_whose_commit_was_lost_is_recorded_once",
        "tests/test_postgres_store.py::test_a_write_that_lost_its_connection_before_it_appended_is_done_again",
        "tests/test_postgres_store.py::test_an_incident_copied_in_whose_commit_was_lost_is_not_copied_again")),
    # the team store's own code, in process against the test cluster (the shared queries are sql's), and the server
    # down for a while (reconnecting with pauses)
    "postgres": Module("runner/store/postgres.py", (
        "tests/test_postgres_store.py",
        "tests/test_reconcile.py::test_a_team_store_that_loses_its_server_says_so_reconnects_and_records_each_event_once",
        ONLY_POSTGRES)),
    "outbox": Module("runner/run/outbox.py", ("tests/test_outbox.py", "tests/test_drive.py", ONLY_SQLITE)),
    "slack": Module("integrations/slack.py", ("tests/test_reconcile.py", *LIVE, "tests/test_startup.py", SECRETS),
                    out_of_scope=("check",)),
    "jira": Module("integrations/jira.py", ("tests/test_reconcile.py", *LIVE, "tests/test_startup.py", SECRETS,
                                            ONLY_SQLITE),
                   out_of_scope=("check", "_screen")),  # _screen: the create screen, read by `check` alone
    "templates": Module("runner/format/templates.py", (
        "tests/test_templates.py", "tests/test_values.py::test_business_days_skip_the_weekend",
        "tests/test_values.py::test_business_days_land_on_a_weekday_after_as_many_weekdays")),
    "values": Module("runner/format/values.py", ("tests/test_values.py",
                                                 "tests/test_properties.py::test_any_answers_file_of_well_typed_values_is_accepted_as_written",
                                                 "tests/test_properties.py::test_a_value_of_the_wrong_type_is_reported_at_its_line")),
    "paths": Module("runner/paths.py", ("tests/test_paths.py",)),
    "evidence": Module("runner/run/evidence.py", ("tests/test_evidence.py",)),
}

# The one replacement kept for each binary operator, and the ones kept for each comparison: the mistakes people
# make (an off-by-one boundary, a negation, the opposite operation), not every operator in the language.
BINARY = {"Add": "Sub", "Sub": "Add", "Mult": "Div", "Mul": "Div", "Div": "Mul", "FloorDiv": "Div", "Mod": "FloorDiv",
          "Pow": "Mul", "BitOr": "BitAnd", "BitAnd": "BitOr", "BitXor": "BitOr", "LShift": "RShift",
          "RShift": "LShift", "MatMul": "Mul"}
COMPARISON = {"Eq": {"NotEq"}, "NotEq": {"Eq"}, "Lt": {"LtE", "Gt"}, "LtE": {"Lt", "GtE"}, "Gt": {"GtE", "Lt"},
              "GtE": {"Gt", "LtE"}, "Is": {"IsNot"}, "IsNot": {"Is"}, "In": {"NotIn"}, "NotIn": {"In"}}

# (module, operator, text on the mutated line, why no test can tell the mutant from the original)
EQUIVALENT: list[tuple[str, str, str, str]] = [
    ("paths", "ReplaceFalseWithTrue", "def _private_dir(path: Path, *, parents",
     "the one caller without `parents` (log_dir) makes logs/ right after home() made its parent"),
    ("templates", "NumberReplacer", "isinstance(right, int) and right > 0 and",
     "`x ** 0` and `x ** 1` are never too large: checking them or not changes nothing"),
    ("templates", "ReplaceComparisonOperator_Gt_GtE", "isinstance(right, int) and right > 0 and",
     "`x ** 0` is never too large: checking it or not changes nothing"),
    ("templates", "NumberReplacer", "+right * max(abs(left), 1).bit_length()",
     "only 0, 1 and -1 have fewer than 2 bits, and their powers are instant whatever the exponent"),
    ("templates", "NumberReplacer", "left[0] -= len(made)", "the budget is a list of one: [-1] is [0]"),
    ("templates", "NumberReplacer", "+if left[ -1] < 0:", "the budget is a list of one: [-1] is [0]"),
    ("templates", "NumberReplacer", "+right * max(abs(left), 3).bit_length()",
     "3 has as many bits as 2: the same bound for every base"),
    ("templates", "NumberReplacer", "@lru_cache(maxsize=", "the size of a cache: the same results"),
    ("templates", "RemoveDecorator", "@lru_cache(maxsize=", "a cache removed: the same results, more slowly"),
    ("sqlite", "ReplaceFalseWithTrue", "check_same_thread=False)",
     "no connection crosses threads: each courier thread opens its own (Courier._work) and closes it there"),
    ("sqlite", "NumberReplacer", "old_umask = os.umask(0o077)",
     "SQLite gives the -wal and -shm files the mode of the database file, whatever the umask (checked by hand "
     "with 0o022: tests/test_modes.py still finds them 0600)"),
    ("sqlite", "NumberReplacer", "deadline = time.monotonic() + BUSY_MS / 1000",
     "a deadline of 9.99 s or 10.01 s instead of 10 s for the WAL switch"),
    ("sqlite", "NumberReplacer", "BUSY_MS = 10_000", "a wait of 10.001 s or 9.999 s instead of 10 s for the lock"),
    ("sqlite", "NumberReplacer", "timeout=BUSY_MS / 1000", "a busy timeout of 9.99 s or 10.01 s instead of 10 s"),
    ("sqlite", "ReplaceBinaryOperator_Div_Mul", "deadline = time.monotonic() + BUSY_MS / 1000",
     "a later deadline for the WAL switch: the same when the other connection lets go (tested), longer when not"),
    ("sqlite", "ReplaceComparisonOperator_Gt_GtE", 'or time.monotonic() > deadline:', "the deadline to the nanosecond"),
    ("sqlite", "ReplaceTrueWithFalse", "_dumps = json.JSONEncoder(sort_keys=True",
     "the outbox payloads, refs and variables are read back with json.loads: the same values in any key order"),
    ("sqlite", "ReplaceFalseWithTrue", "_dumps = json.JSONEncoder(sort_keys=True, ensure_ascii=False",
     "stored as \\u escapes instead of UTF-8, read back with json.loads as the same text"),
    ("sqlite", "NumberReplacer", "os.ftruncate(fd, 0)",
     "the holder's line is written over from its start and is longer than one byte"),
    ("sqlite", "NumberReplacer", 'SELECT count(*) FROM events WHERE {where}", values).fetchone()[0]',
     "a row of one column: [-1] is [0]"),
    ("sqlite", "NumberReplacer", "+time.sleep( 1.01)", "1.01 s between tries of the WAL switch, within the deadline"),
    ("sqlite", "NumberReplacer", 'execute("PRAGMA user_version").fetchone()[0]', "a row of one column: [-1] is [0]"),
    ("sqlite", "NumberReplacer", "holder = os.read(fd, 200)", "the holder's line is under 100 bytes"),
    ("sqlite", "NumberReplacer", "self._apply(settled[0]", "RETURNING one column: [-1] is [0]"),
    ("sqlite", "ReplaceComparisonOperator_LtE_Lt", "if left <= 0:", "the follower's timeout met to the nanosecond"),
    ("sqlite", "ReplaceFalseWithTrue", "def running(self, incident_id: str, *, take_over: bool = False)",
     "SQLite's running reads no `take_over` (the system lets go of a killed holder's lock: none to take over): "
     "a default nobody reads"),
    ("sqlite", "ReplaceTrueWithFalse", "def _transact(self, work: Callable[[], T], *, replayable: bool = True",
     "SQLite's _transact reads neither `replayable` nor `committed` (PostgreSQL's, for a lost connection): a "
     "default nobody reads"),
    ("sqlite", "ReplaceBinaryOperator_BitOr_BitAnd", "+os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY & "
     "os.O_NOFOLLOW", "`O_CREAT | (O_WRONLY & O_NOFOLLOW)` is O_CREAT: the file is made 0600 and closed at once all "
     "the same (read-only or not); O_NOFOLLOW only guards against a link made in the instant after _check_private "
     "refused any link at that path (tests/test_paths.py), a race no test can make happen"),
    ("outbox", "AddNot", "if TYPE_CHECKING:", "the names imported for the annotations are imported at run time too"),
    ("outbox", "AddNot", 'return item.status if item else "missing"',
     "the worker's return value is never read (only what it raises), and an outbox item is never deleted"),
    ("outbox", "ReplaceComparisonOperator_LtE_Lt", "if not pending or left <= 0:",
     "the deadline met to the nanosecond"),
    ("slack", "NumberReplacer", "limit=200", "the size of a page of a list read page by page, or of the latest "
     "messages an upload is looked for among (a channel's report is its latest upload)"),
    ("jira", "NumberReplacer", "+maxResults= 2)", "one issue carries each label: the first of "
     "two is the first of one"),
    ("jira", "NumberReplacer", "+maxResults= 0)", "python-jira reads maxResults=0 as all of them (client.py: \"If "
     "maxResults evaluates to False, it will try to get all issues in batches\"); one issue carries each label"),
    ("jira", "NumberReplacer", '"key": found[0].key, "url": self._browse(found[0].key)',
     "a search for at most one issue: [-1] is [0]"),
    ("jira", "NumberReplacer", "if status is None or status >= 500:", "Jira does not answer 499"),
    ("jira", "ReplaceComparisonOperator_Lt_LtE", "if since < self.settings.index_lag:",
     "the index lag met to the microsecond"),
    ("slack", "NumberReplacer", "if status >= 500:", "Slack does not answer 499"),
    ("slack", "ReplaceOrWithAnd", 'header = exc.response.headers.get("Retry-After") or',
     "slack_sdk's response headers are read without regard to case: both look-ups give the same value"),
    ("slack", "NumberReplacer", '"file": reply["files"][0]["id"]', "an upload of one file: [-1] is [0]"),
    ("slack", "NumberReplacer", 'f"user {users[0]} was not invited', "a list of one user: [-1] is [0]"),
    ("slack", "NumberReplacer", 'return matches[0]["id"], _shown(matches[0])', "a list of one user: [-1] is [0]"),
    ("slack", "RemoveDecorator", "@classmethod", "pydantic's field_validator makes the function a class method "
     "when it is not one"),
    ("slack", "NumberReplacer", "wait = self._last_post.get(channel, 0.0)",
     "the first post in a channel: the monotonic clock is far past 1 s, so it never waits either way"),
    ("slack", "ReplaceComparisonOperator_Gt_GtE", "if wait > 0:", "a wait of exactly 0 s"),
    ("outbox", "ReplaceFalseWithTrue", "settings: Settings, *, exercise: bool = False",
     "the one caller (open_outbox) always says whether the incident is an exercise"),
    ("outbox", "ReplaceOrWithAnd", "if item is None or item.status not in UNDELIVERED or needs(item)",
     "a settled action reaching a worker is refused by the store's begin() all the same (never sent twice)"),
    ("outbox", "ReplaceComparisonOperator_LtE_Lt", "or when <= time.monotonic()]", "a lane's backoff over to the "
     "nanosecond"),
    ("outbox", "ReplaceTrueWithFalse", 'name="ir-retry", daemon=True)', "every run ends with finish() (drive's "
     "finally), which sets the event the retrier waits on: the thread ends with the run, a daemon or not"),
    ("outbox", "ReplaceTrueWithFalse", "say: Callable[[str], None], retry: bool = True):",
     "the one caller (open_outbox) always says whether the run retries"),
    ("outbox", "NumberReplacer", "delay = max(retry_after or 0.0,", "the smallest backoff is 5 s: no Retry-After "
     "read as 1 s or -1 s instead of 0 changes no maximum"),
    ("outbox", "NumberReplacer", "+raise self._crashed[ -1]", "the retrier ends at its first error: the list holds "
     "one at most"),
    ("outbox", "ReplaceBreakWithContinue", "break",
     "a lane whose retry fails again is marked down (_failed) before the loop goes on, so the lane's later "
     "actions are passed over all the same (`not needs(item) & self._down`)"),
    ("outbox", "NumberReplacer", "+due = [(name, name.split(\" \", 2)[0])",
     "an integration's name has no space: the first word of its lane's name is the same split once or twice"),
    ("outbox", "ReplaceBinaryOperator_Sub_Add", "retrier.join(timeout=max(0.0, deadline - time.monotonic()))",
     "a later bound on the join of a thread that ends as soon as it sees the stop (Event.wait returns when it is "
     "set, then it closes its store): the join ends when the thread does, at the same moment"),
    ("outbox", "NumberReplacer", "retrier.join(timeout=max(0.0, deadline - time.monotonic()))",
     "a floor of 1 s or -1 s instead of 0 s on the join of a thread that ends as soon as it sees the stop: the "
     "same moment, except for a finish with no time left at all, where which comes first is a race"),
    ("timeline", "ReplaceFalseWithTrue", 'separators=(",", ":"), ensure_ascii=False)',
     "these options are the fallback encoder's, for an interpreter without the json module's C part: CPython has it"),
    ("timeline", "AddNot", "if make is None:", "the fallback encoder writes the same text as the C one, more slowly"),
    ("timeline", "ReplaceComparisonOperator_Is_IsNot", "if make is None:",
     "the fallback encoder writes the same text as the C one, more slowly"),
    ("timeline", "NumberReplacer", 'return lambda value: "".join(encode(value, 0))',
     "the indent level, which an encoder made without an indent never reads"),
    ("sql", "ReplaceTrueWithFalse", "_dumps = json.JSONEncoder(sort_keys=True",
     "the outbox payloads, refs and variables are read back with json.loads: the same values in any key order"),
    ("sql", "NumberReplacer", 'SELECT count(*) FROM events WHERE {where}", values).fetchone()[0]',
     "a row of one column: [-1] is [0]"),
    ("sql", "NumberReplacer", "PAGE = 2_000", "the size of a page of a long result: the same rows, in the same order"),
    ("sql", "ReplaceFalseWithTrue", "_dumps = json.JSONEncoder(sort_keys=True, ensure_ascii=False",
     "stored as \\u escapes instead of UTF-8, read back with json.loads as the same text"),
    ("sql", "NumberReplacer", "return last[0]", "the list holds the one last event: [-1] is [0]"),
    ("sql", "NumberReplacer", "limit: int | None = None, after: int = 0) -> Iterator[Event]:",
     "`seq > -1` and no bound select the same events: seq starts at 1"),
    ("sql", "NumberReplacer", "+sealed = - 2", "no draft is numbered -1 or -2: neither carries the seals"),
    ("sql", "ReplaceUnaryOperator_USub_Invert", "sealed = -1", "~1 is -2: no draft is numbered -1 or -2"),
    ("sql", "ReplaceTrueWithFalse", "def _transact(self, work: Callable[[], T], *, replayable: bool = True",
     "the base's signature, which raises NotImplementedError: the stores' own _transact give the defaults"),
    ("sql", "ReplaceFalseWithTrue", "def running(self, incident_id: str, *, take_over: bool = False)",
     "the base's signature, which raises NotImplementedError: the stores' own running give the defaults"),
    ("sql", "NumberReplacer", "self._pending = last[0]", "the list holds the one last event: [-1] is [0]"),
    ("sql", "NumberReplacer", "since: str | None, after: int = 0)",
     "`seq > -1` and `seq > 0` select the same events: seq starts at 1"),
    ("postgres", "NumberReplacer", '"SELECT pg_advisory_xact_lock(%s, 0)", (LOCKS,))',
     "the migration lock's second key: any constant makes the processes of this ir migrate one at a time, and the "
     "lock is held only inside the migration's transaction, where no test can look at it"),
    ("postgres", "NumberReplacer", "+return int(row[ -1]) if row else 0", "a row of one column: [-1] is [0]"),
    ("postgres", "NumberReplacer", "+if not taken or not taken[ -1]:", "a row of one column: [-1] is [0]"),
    ("postgres", "NumberReplacer", '+return str(row[ -1]) if row else "another process"',
     "a row of one column: [-1] is [0]"),
    ("postgres", "NumberReplacer", '+self.db.execute("SELECT pg_terminate_backend(%s)", (row[ -1],))',
     "a row of one column: [-1] is [0]"),
    ("postgres", "NumberReplacer", "+after, left = -1, limit",
     "`seq > -1` and `seq > 0` select the same events: seq starts at 1"),
    ("postgres", "NumberReplacer", "for note in self._listener.notifies(timeout=left, stop_after=1):",
     "wait() returns at the first notification for its incident and otherwise listens again until its deadline: "
     "notifies() stopping after a batch (0), one or two notifications yields them the same"),
    ("postgres", "ReplaceComparisonOperator_Gt_GtE", "if time.monotonic() > deadline:",
     "the deadline to the nanosecond"),
    ("postgres", "ReplaceComparisonOperator_Gt_GtE", "while (left := deadline - time.monotonic()) > 0:",
     "the deadline to the nanosecond"),
    ("postgres", "ReplaceAndWithOr", "if not lock.broken and not lock.closed:",
     "a connection psycopg knows broken or closed raises psycopg.Error on execute, which is passed over before it "
     "is closed: trying to unlock it or not is the same"),
    ("evidence", "NumberReplacer", "CHUNK = 1 << 20",
     "the size of each read: the hash, the size and the copy are the same whatever it is"),
]


def config(name: str, module: Module, timeout: float) -> Path:
    tests = " ".join(module.tests)
    path = SESSIONS / f"{name}.toml"
    path.write_text(f"""[cosmic-ray]
module-path = "{module.path}"
timeout = {timeout}
excluded-modules = []
test-command = '{sys.executable} -m pytest -x -q -p no:cacheprovider -o addopts= {tests}'

[cosmic-ray.distributor]
name = "local"
""")
    return path


def _annotations(tree: ast.AST) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """The spans of annotations that are never evaluated (all but those in pydantic models' bodies)."""
    spans = []
    models = {id(n) for c in ast.walk(tree) if isinstance(c, ast.ClassDef)
              and any(getattr(b, "id", getattr(b, "attr", "")) in ("Model", "BaseModel") for b in c.bases)
              for n in c.body}
    for node in ast.walk(tree):
        found = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            found = [a.annotation for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
                     if a is not None and a.annotation is not None] + ([node.returns] if node.returns else [])
        elif isinstance(node, ast.AnnAssign) and id(node) not in models:
            found = [node.annotation]
        spans += [((n.lineno, n.col_offset), (n.end_lineno, n.end_col_offset)) for n in found]
    return spans


def _functions(tree: ast.AST, names: tuple[str, ...]) -> list[tuple[int, int]]:
    return [(n.lineno, n.end_lineno or n.lineno) for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name in names]


def why_not_run(module: Module, operator: str, start: tuple[int, int], tree: ast.AST) -> str | None:
    """Why a mutant is not run (sampled out, an annotation, out of scope), or None to run it."""
    kind = operator.removeprefix("core/")
    binary = re.fullmatch(r"ReplaceBinaryOperator_(\w+?)_(\w+)", kind)
    if binary and BINARY.get(binary[1]) != binary[2]:
        return "sampled out: not the nearest operator"
    comparison = re.fullmatch(r"ReplaceComparisonOperator_(\w+?)_(\w+)", kind)
    if comparison and comparison[2] not in COMPARISON.get(comparison[1], set()):
        return "sampled out: not the nearest operator"
    if any(a <= start < b for a, b in _annotations(tree)):
        return "annotation: never evaluated"
    if any(a <= start[0] <= b for a, b in _functions(tree, module.out_of_scope)):
        return "out of scope"
    return None


def equivalent(name: str, operator: str, start: tuple[int, int], lines: list[str], diff: str) -> str | None:
    """Why a mutant that survived is equivalent (EQUIVALENT, or a bare `*` of a signature made `/`), or None. An
    entry's text is looked for on the original line, or with a leading `+` on the mutated one (the diff)."""
    kind, text = operator.removeprefix("core/"), lines[start[0] - 1]
    if kind.startswith("ReplaceBinaryOperator_Mul_") and re.match(r"\*\s*,", text[start[1]:]):
        return "a signature's bare `*` made `/`: the arguments after it are still passed by name"
    added = [line[1:] for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    for where, op, line, reason in EQUIVALENT:
        found = any(line[1:] in a for a in added) if line.startswith("+") else line in text
        if where == name and op == kind and found:
            return reason
    return None


def prepare(name: str, module: Module, timeout: float, fresh: bool) -> tuple[Path, Path]:
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkResult

    SESSIONS.mkdir(parents=True, exist_ok=True)
    cfg, db = config(name, module, timeout), SESSIONS / f"{name}.sqlite"
    if fresh or not db.exists():
        db.unlink(missing_ok=True)
        subprocess.run(["cosmic-ray", "init", str(cfg), str(db)], cwd=ROOT, check=True)
    source = (ROOT / module.path).read_text()
    lines, tree = source.splitlines(), ast.parse(source)
    with use_db(str(db), WorkDB.Mode.open) as work:
        results = dict(work.results)
        for item in list(work.work_items):
            mutation, result = item.mutations[0], results.get(item.job_id)
            start = tuple(mutation.start_pos)
            if result is None:
                reason = why_not_run(module, mutation.operator_name, start, tree)
                if reason:
                    work.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED, output=reason))
            elif result.test_outcome == TestOutcome.SURVIVED or str(result.output).startswith("equivalent: "):
                reason = equivalent(name, mutation.operator_name, start, lines, result.diff or "")
                if reason and result.output != f"equivalent: {reason}":  # triaged since it ran (or reworded)
                    work.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED, diff=result.diff,
                                                            output=f"equivalent: {reason}"))
    return cfg, db


def forget_survivors(db: Path) -> None:
    """Let the survivors run again: cosmic-ray runs the mutants that have no result."""
    import sqlite3

    with sqlite3.connect(db) as work:
        work.execute("DELETE FROM work_results WHERE lower(test_outcome) = 'survived'")


def baseline(module: Module) -> float:
    """The module's tests on the unmutated source: they must pass; how long they take."""
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                           *shlex.split(" ".join(module.tests))], cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"the tests of {module.path} fail without any mutant:\n{done.stdout[-3000:]}")
    return time.monotonic() - began


def execute(cfg: Path, db: Path, module: Module, minutes: float) -> None:
    original = (ROOT / module.path).read_bytes()
    process = subprocess.Popen(["cosmic-ray", "exec", str(cfg), str(db)], cwd=ROOT, start_new_session=True)
    try:
        process.wait(timeout=minutes * 60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGINT)  # cosmic-ray puts the file back as it stops
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    finally:
        if (ROOT / module.path).read_bytes() != original:
            (ROOT / module.path).write_bytes(original)


def figures(name: str, module: Module, *, survivors: bool) -> dict[str, int]:
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome

    db = SESSIONS / f"{name}.sqlite"
    count: Counter[str] = Counter()
    shown = []
    with use_db(str(db), WorkDB.Mode.open) as work:
        results = dict(work.results)
        for item in work.work_items:
            result = results.get(item.job_id)
            if result is None:
                count["not run yet"] += 1
            elif result.worker_outcome == WorkerOutcome.SKIPPED:
                reason = str(result.output)
                count["equivalent" if reason.startswith("equivalent") else reason.split(":")[0]] += 1
            elif result.test_outcome == TestOutcome.SURVIVED:
                count["survived"] += 1
                mutation = item.mutations[0]
                shown.append(f"--- {module.path}:{mutation.start_pos[0]} {mutation.operator_name} "
                             f"#{mutation.occurrence}\n{result.diff}")
            elif result.test_outcome == TestOutcome.INCOMPETENT:
                count["incompetent"] += 1
            else:
                count["killed" if result.output != "timeout" else "timed out"] += 1
    if survivors:
        print("\n".join(shown))
    return count


def line(name: str, count: dict[str, int]) -> str:
    killed = count.get("killed", 0) + count.get("timed out", 0)
    run = killed + count.get("survived", 0)
    score = f"{100 * killed / run:.1f}%" if run else "-"
    return (f"{name:10} score {score:>6}  killed {killed:4} (timed out {count.get('timed out', 0)})  survived "
            f"{count.get('survived', 0):3}  equivalent {count.get('equivalent', 0):3}  not run yet "
            f"{count.get('not run yet', 0):4}  incompetent {count.get('incompetent', 0)}  | not counted: sampled out "
            f"{count.get('sampled out', 0)}, annotations {count.get('annotation', 0)}, out of scope "
            f"{count.get('out of scope', 0)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*", choices=[[], *MODULES], default=[], metavar="MODULE",
                        help=f"of: {', '.join(MODULES)} (default: all)")
    parser.add_argument("--minutes", type=float, default=12.0, help="the cap on each module's run")
    parser.add_argument("--fresh", action="store_true", help="start the modules' sessions over")
    parser.add_argument("--report", action="store_true", help="only print the figures and the survivors")
    parser.add_argument("--survivors", action="store_true",
                        help="run the survivors again (after a test was added to kill them)")
    args = parser.parse_args()
    names = args.modules or list(MODULES)
    for name in names:
        module = MODULES[name]
        if args.survivors and (SESSIONS / f"{name}.sqlite").exists():
            forget_survivors(SESSIONS / f"{name}.sqlite")
        if not args.report:
            took = baseline(module)
            cfg, db = prepare(name, module, timeout=max(10.0, round(4 * took)), fresh=args.fresh)
            print(f"{name}: tests take {took:.1f} s unmutated; running for at most {args.minutes:g} min", flush=True)
            execute(cfg, db, module, args.minutes)
        elif (SESSIONS / f"{name}.sqlite").exists():
            prepare(name, module, timeout=30, fresh=False)  # the equivalents triaged since the run
    print()
    for name in names:
        if (SESSIONS / f"{name}.sqlite").exists():
            print(line(name, figures(name, MODULES[name], survivors=args.report)))
        else:
            print(f"{name:10} not run")


if __name__ == "__main__":
    main()
