"""The domain's shared bounds and the two kinds of actor."""

from __future__ import annotations

import uuid

import pytest

from agenthub.actors import OPERATOR, Principal
from agenthub.domain import MAX_SEQ, PageBounds, check_seq
from agenthub.errors import ValidationFailed


def test_page_bounds_default_and_range() -> None:
    pages = PageBounds(default=50, maximum=200)
    assert pages.limit(None) == 50
    assert pages.limit(1) == 1
    assert pages.limit(200) == 200
    for bad in (0, -1, 201):
        with pytest.raises(ValidationFailed) as err:
            pages.limit(bad)
        assert err.value.details == {"limit": ["must be between 1 and 200"]}


def test_seq_bounds_name_the_callers_field() -> None:
    assert check_seq(None, "after") is None
    assert check_seq(0, "after") == 0
    assert check_seq(MAX_SEQ, "after") == MAX_SEQ
    with pytest.raises(ValidationFailed) as err:
        check_seq(-1, "afterSeq")
    assert "afterSeq" in err.value.details
    with pytest.raises(ValidationFailed):
        check_seq(MAX_SEQ + 1, "after")


def test_operator_has_admin_rights_and_no_agent_identity() -> None:
    someone = uuid.uuid4()
    assert OPERATOR.is_admin
    assert OPERATOR.audit_agent_id is None
    assert not OPERATOR.is_agent(someone)
    assert OPERATOR.via == "cli"


def test_principal_is_the_agent_behind_a_session() -> None:
    agent_id = uuid.uuid4()
    member = Principal(agent_id=agent_id, name="a", role="agent", token_prefix="p" * 12)
    admin = Principal(agent_id=agent_id, name="a", role="admin", token_prefix="p" * 12)
    assert not member.is_admin
    assert admin.is_admin
    assert member.is_agent(agent_id)
    assert not member.is_agent(uuid.uuid4())
    assert member.audit_agent_id == agent_id
    assert member.via == "api"
