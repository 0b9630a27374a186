"""The dependents on a principal's policy, as the store finds them: one family's policy only."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.config import Settings
from bot.domain.identity import id_hmac, mask_id
from bot.store.database import Database
from bot.store.policies import MAX_DEPENDENTS, PolicyStore
from bot.store.setup import open_store
from tests.conftest import TEST_KEY, sqlite_only

KEY = TEST_KEY.encode()
PRINCIPAL = "2000000006"


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[PolicyStore]:
    db = await open_store(settings)
    yield PolicyStore(db, KEY)
    await db.close()


async def add(
    db: Database,
    digits: str,
    kind: str,
    beneficiary: str,
    *,
    policy: str = "BUPA-90551200",
    insurer: str = "BUPA",
    name: str | None = None,
) -> None:
    await db.write(
        "INSERT INTO policies (id_hmac, id_masked, insurer_code, policy_number, policy_class, "
        "beneficiary_type, beneficiary_number, start_date, expiry_date, member_name) "
        "VALUES (?, ?, ?, ?, 'A', ?, ?, '2026-01-01', '2027-01-01', ?)",
        (id_hmac(KEY, digits), mask_id(digits), insurer, policy, kind, beneficiary, name),
    )


async def test_a_family_policy_lists_its_dependents_in_their_order(store: PolicyStore) -> None:
    await add(store.db, PRINCIPAL, "principal", "01", name="Ahmed Khan")
    await add(store.db, "2123456788", "dependent", "03", name="Omar Khan")
    await add(store.db, "2112345679", "dependent", "02", name="Fatima Khan")
    await add(store.db, "2134567896", "dependent", "02", policy="OTHER")  # another policy
    await add(store.db, "2145678906", "dependent", "02", insurer="TAWUNIYA")  # another insurer
    [policy] = await store.policies_for(PRINCIPAL)
    dependents = await store.dependents_of(id_hmac(KEY, PRINCIPAL), policy)
    assert [d.id_masked for d in dependents] == ["2*******79", "2*******88"]
    assert [d.beneficiary_type.value for d in dependents] == ["dependent", "dependent"]


async def test_only_the_principal_gets_the_list(store: PolicyStore) -> None:
    await add(store.db, PRINCIPAL, "principal", "01")
    await add(store.db, "2112345679", "dependent", "02")
    [policy] = await store.policies_for("2112345679")
    # Asked for by a dependent's number, the same policy lists nobody.
    assert await store.dependents_of(id_hmac(KEY, "2112345679"), policy) == []


async def test_a_group_policy_with_several_principals_lists_nobody(store: PolicyStore) -> None:
    # An employer's policy: nothing says whose dependent is whose.
    await add(store.db, PRINCIPAL, "principal", "01")
    await add(store.db, "2112345679", "dependent", "02")
    await add(store.db, "1000000008", "principal", "01")
    [policy] = await store.policies_for(PRINCIPAL)
    assert await store.dependents_of(id_hmac(KEY, PRINCIPAL), policy) == []


async def test_more_dependents_than_a_family_has_lists_nobody(store: PolicyStore) -> None:
    await add(store.db, PRINCIPAL, "principal", "01")
    for n in range(MAX_DEPENDENTS):
        await add(store.db, f"31000000{n:02}", "dependent", f"{n + 2:02}")
    [policy] = await store.policies_for(PRINCIPAL)
    assert len(await store.dependents_of(id_hmac(KEY, PRINCIPAL), policy)) == MAX_DEPENDENTS
    await add(store.db, "3200000000", "dependent", "99")
    assert await store.dependents_of(id_hmac(KEY, PRINCIPAL), policy) == []


@sqlite_only  # SQLite's plan; PostgreSQL chooses by its statistics
async def test_the_members_of_a_policy_are_found_by_index(store: PolicyStore) -> None:
    plan = await store.db.read(
        "EXPLAIN QUERY PLAN SELECT 1 FROM policies WHERE insurer_code = ? AND policy_number = ?",
        ("BUPA", "BUPA-90551200"),
    )
    assert any("policies_policy" in str(row[-1]) for row in plan)
