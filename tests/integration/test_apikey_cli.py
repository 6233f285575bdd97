"""``twofa apikey list``: a header row, one key a line, scopes in one sorted order."""

from __future__ import annotations

from services.cli.main import main
from services.core import apikeys


def test_apikey_list_has_a_header_and_sorted_scopes(monkeypatch, settings, ctx, capsys):
    monkeypatch.setenv("TWOFA_ENV", "test")
    monkeypatch.setenv("TWOFA_DATABASE_URL", settings.resolved_database_url)
    with ctx.sessions.begin() as session:  # stored in the order given, as twofa dev's portal key is
        made = apikeys.create_key(session, "portal", ("enroll", "challenge"), ctx.clock.now())
    assert main(["apikey", "create", "--name", "login", "--scopes", "challenge,admin"]) == 0
    capsys.readouterr()
    assert main(["apikey", "list"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == ["ID", "NAME", "SCOPES", "STATE", "CREATED"]
    by_name = {row.split()[1]: row.split() for row in rows}
    assert by_name["portal"][:4] == [made.id, "portal", "challenge,enroll", "active"]
    assert by_name["login"][2] == "admin,challenge"
    assert all(row.index(cells[2]) == header.index("SCOPES") for row, cells in
               zip(rows, (r.split() for r in rows)))  # aligned under the header
