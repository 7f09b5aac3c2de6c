"""The table-filter language, checked against TiDB's documented and implemented behaviour."""

from __future__ import annotations

from pathlib import Path

import pytest

from tibackup.dump.tablefilter import (
    DEFAULT_RULES,
    TableFilter,
    default_filter,
    filter_from_dumpling_flags,
)
from tibackup.errors import UsageError


def selected(rules: list[str], name: str, *, case_sensitive: bool = False) -> bool:
    schema, _, table = name.partition(".")
    return TableFilter.parse(rules, case_sensitive=case_sensitive).match_table(schema, table)


@pytest.mark.parametrize(
    ("rule", "name", "expected"),
    [
        # plain names
        ("db1.tbl1", "db1.tbl1", True),
        ("db1.tbl1", "db1.tbl2", False),
        ("db1.tbl1", "db2.tbl1", False),
        ("$x_1.é", "$x_1.é", True),
        # * — any run, including an empty one and dots
        ("*.*", "anything.at_all", True),
        ("data.*", "data.t", True),
        ("data.*", "data2.t", False),
        ("*.backup_*", "x.backup_", True),
        ("*.backup_*", "x.backup_2020", True),
        ("*.backup_*", "x.nobackup_1", False),
        ("*.*", "a.b.c", True),
        # ? — exactly one character (a code point)
        ("db?.t", "db1.t", True),
        ("db?.t", "db.t", False),
        ("db?.t", "db12.t", False),
        ("db?.t", "dbé.t", True),
        # [a-z] and [!a-z]
        ("db[0-9].tbl[0-9][0-9]", "db3.tbl42", True),
        ("db[0-9].tbl[0-9][0-9]", "dbx.tbl42", False),
        ("db[0-9].tbl[0-9][0-9]", "db3.tbl4", False),
        ("db[!0-9].t", "dbx.t", True),
        ("db[!0-9].t", "db3.t", False),
        ("db[abc].t", "dbb.t", True),
        ("db[abc].t", "dbd.t", False),
        ("db[^a].t", "db^.t", True),  # [^ is not negation in a glob
        ("db[^a].t", "dbb.t", False),
        ("db[.-].t", "db-.t", True),  # inside [...] a dot is just a character
        ("db[\\]].t", "db].t", True),
        # $ is an identifier character, also next to wildcards (TiDB would make it an anchor)
        ("t$*.*", "t$x.a", True),
        ("t$*.*", "t.a", False),
        ("p_123$.45", "p_123$.45", True),
        ("p_123$.45", "p_123.45", False),
        ("中文.表名", "中文.表名", True),
        ("中文.表名", "英文.表名", False),
        ("[!a-z].[^a-z]", "!.^", True),
        ("[!a-z].[^a-z]", "1.z", True),
        ("[!a-z].[^a-z]", "a.z", False),
        ("[!a-z].[^a-z]", "1.9", False),
        # TiDB hands [!]…] to Go verbatim: `]` right after `[^` is a member, so this is one set
        ("[!][x].*", "y.a", True),
        ("[!][x].*", "x.a", False),
    ],
)
def test_wildcards(rule: str, name: str, expected: bool) -> None:
    assert selected([rule], name) is expected


@pytest.mark.parametrize(
    ("rule", "name", "expected"),
    [
        ("AdventureWorks\\.*.*", "AdventureWorks.Person/Password", True),
        ("AdventureWorks\\.*.*", "AdventureWorksX/Password", False),
        ("a\\*b.t", "a*b/t", True),
        ("a\\*b.t", "axxb/t", False),
        ("a\\?.t", "a?/t", True),
        ("a\\?.t", "ab/t", False),
        ("a\\[1\\].t", "a[1]/t", True),
        ("a\\ b.t", "a b/t", True),
        ("a\\-b.t", "a-b/t", True),
        ("\\\\\\..*", "\\./a", True),  # an escaped backslash, then an escaped dot
        ("\\\\\\..*", "\\a/c", False),
        ("db.t\\.x*", "db/t.xyz", True),
        ("db.t\\é", "db/té", True),
    ],
)
def test_backslash_escapes(rule: str, name: str, expected: bool) -> None:
    schema, _, table = name.partition("/")
    assert TableFilter.parse([rule]).match_table(schema, table) is expected


@pytest.mark.parametrize(
    ("rule", "schema", "table", "expected"),
    [
        ('"AdventureWorks.Person".Person', "AdventureWorks.Person", "Person", True),
        ("`AdventureWorks.Person`.Password", "AdventureWorks.Person", "Password", True),
        ('"a*".t', "a*", "t", True),
        ('"a*".t', "ab", "t", False),  # quoted means literal
        ("`a?`.t", "ab", "t", False),
        ('"say ""hi""".t', 'say "hi"', "t", True),
        ("`back``tick`.t", "back`tick", "t", True),
        ('db."x y"', "db", "x y", True),
        ('"my db".`my.table`', "my db", "my.table", True),
        ("`it's`.*", "it's", "anything", True),
    ],
)
def test_quoted_names(rule: str, schema: str, table: str, expected: bool) -> None:
    assert TableFilter.parse([rule]).match_table(schema, table) is expected


@pytest.mark.parametrize(
    ("rule", "name", "expected"),
    [
        ("/^db\\d{2,}$/./^tbl\\d{2,}$/", "db01.tbl99", True),
        ("/^db\\d{2,}$/./^tbl\\d{2,}$/", "db1.tbl99", False),
        ("/b/.*", "db01.t", True),  # searched, not anchored
        ("/^b/.*", "db01.t", False),
        ("/^(a|b)$/.*", "b.t", True),
        ("/^(a|b)$/.*", "ab.t", False),
        ("*./a\\/b/", "x.a/b", True),  # \/ inside a regex
        ("/^[[:digit:]]+$/.*", "2024.t", True),
        ("/^[[:digit:]]+$/.*", "20x4.t", False),
        ("/^\\d+$/.*", "١٢٣.t", False),  # Go's \d is ASCII only
        ("/^\\w+$/.*", "é.t", False),
        ("/^a$/.*", "a\n.t", False),  # Go's $ is the end of the text, not before a final newline
        ("/^a\\z/.*", "a.t", True),
        ("/^\\Qa.b\\E$/.*", "a.b.t", True),
        ("/^\\Qa.b\\E$/.*", "axb.t", False),
        ("/^\\x41$/.*", "a.t", True),  # case-insensitive by default
        ("/^a{2}$/.*", "aa.t", True),
        ("/^a{2}$/.*", "aaa.t", False),
        ("/^a{,2}$/.*", "a{,2}.t", True),  # Go reads a malformed repeat literally
        ("/^(?P<n>x)+$/.*", "xxx.t", True),
        ("/^a.b$/.*", "a\nb.t", False),
        ("/(?s)^a.b$/.*", "a\nb.t", True),
        ("/(?m)^b$/.*", "a\nb.t", True),
        ("/^a[^a]$/.*", "aA.t", False),  # folding applies before negation, as in Go
    ],
)
def test_regular_expressions(rule: str, name: str, expected: bool) -> None:
    schema, _, table = name.rpartition(".")
    assert TableFilter.parse([rule]).match_table(schema, table) is expected


@pytest.mark.parametrize(
    ("rule", "name", "case_sensitive", "expected"),
    [
        ("/(?-i)^A$/.*", "a.t", False, False),
        ("/(?-i)^A$/.*", "A.t", False, False),  # names are lowered first, as in TiDB
        ("/(?-i)^a$/.*", "A.t", False, True),
        ("/(?i)^a$/.*", "A.t", True, True),
        ("/^a(?i)b|c$/.*", "C.t", True, True),  # (?i) holds to the end of the group, across |
        ("/^a(?i)b|c$/.*", "AB.t", True, False),
        ("/^(?i:a)b$/.*", "Ab.t", True, True),
        ("/^(?i:a)b$/.*", "AB.t", True, False),
    ],
)
def test_regex_flags(rule: str, name: str, case_sensitive: bool, expected: bool) -> None:
    assert selected([rule], name, case_sensitive=case_sensitive) is expected


README_RULES = ["employees.*", "!*.dep*", "*.departments"]


@pytest.mark.parametrize(
    ("rules", "name", "expected"),
    [
        # precedence table of TiDB's table-filter README: the last matching rule decides
        (README_RULES, "irrelevant.table", False),
        (README_RULES, "employees.employees", True),
        (README_RULES, "employees.dept_emp", False),
        (README_RULES, "employees.departments", True),
        (README_RULES, "else.departments", True),
        # exclusions need an inclusion first; a table no rule matches is excluded
        (["!*.Password"], "db.t", False),
        (["!*.Password"], "db.Password", False),
        (["*.*", "!*.Password"], "db.t", True),
        (["*.*", "!*.Password"], "db.Password", False),
        (["!*.Password", "*.*"], "db.Password", True),  # order matters
        ([], "db.t", False),
        (["# only a comment", "   ", ""], "db.t", False),
        (["  \tdb.t \t"], "db.t", True),
    ],
)
def test_negation_and_last_match_wins(rules: list[str], name: str, expected: bool) -> None:
    assert selected(rules, name) is expected


@pytest.mark.parametrize(
    ("rules", "name", "case_sensitive", "expected"),
    [
        (["Employees.Salaries"], "employees.salaries", False, True),
        (["employees.salaries"], "EMPLOYEES.SALARIES", False, True),
        (["EMP*.[S]al*"], "emp.salaries", False, True),
        (['"Emp".`Sal`'], "EMP.SAL", False, True),
        (["/^EMP$/.*"], "emp.t", False, True),
        (["Employees.Salaries"], "employees.salaries", True, False),
        (["Employees.Salaries"], "Employees.Salaries", True, True),
        (["EMP*.*"], "emp.t", True, False),
        (['"Emp".t'], "emp.t", True, False),
        (["/^EMP$/.*"], "emp.t", True, False),
        (["[A-Z]*.*"], "emp.t", False, True),
        (["[A-Z]*.*"], "emp.t", True, False),
    ],
)
def test_case_sensitivity(rules: list[str], name: str, case_sensitive: bool, expected: bool) -> None:
    assert selected(rules, name, case_sensitive=case_sensitive) is expected


def test_file_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "filter.txt").write_text(
        "# employees, but not their pay\n"
        "\n"
        "  employees.*  \r\n"
        "\t!employees.salaries\n"
        "   # an indented comment\n"
        "*.WorkOrder",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)  # relative paths start at the working directory
    f = TableFilter.parse(["@conf/filter.txt", "db.extra"])
    assert f.rules == ("@conf/filter.txt", "db.extra")
    assert f.match_table("employees", "titles")
    assert not f.match_table("employees", "salaries")
    assert f.match_table("x", "WorkOrder")
    assert f.match_table("db", "extra")
    assert not f.match_table("x", "y")
    absolute = TableFilter.parse([f"@{tmp_path / 'conf' / 'filter.txt'}"])
    assert absolute.match_table("x", "workorder")


def test_file_import_position_among_rules(tmp_path: Path) -> None:
    rules_file = tmp_path / "rules"
    rules_file.write_text("!db.secret\n", encoding="utf-8")
    assert not selected(["db.*", f"@{rules_file}"], "db.secret")
    assert selected([f"@{rules_file}", "db.*"], "db.secret")


def test_nested_import_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "inner").write_text("db.*\n", encoding="utf-8")
    (tmp_path / "outer").write_text(f"a.b\n@{tmp_path / 'inner'}\n", encoding="utf-8")
    with pytest.raises(UsageError, match="cannot import another") as exc:
        TableFilter.parse([f"@{tmp_path / 'outer'}"])
    assert f"{tmp_path / 'outer'}:2" in exc.value.message


def test_bad_rule_in_file_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("a.b\n\nmissingdot\n", encoding="utf-8")
    with pytest.raises(UsageError) as exc:
        TableFilter.parse([f"@{tmp_path / 'f'}"])
    assert "'missingdot'" in exc.value.message
    assert f"{tmp_path / 'f'}:3" in exc.value.message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read table filter file") as exc:
        TableFilter.parse([f"@{tmp_path / 'nope'}"])
    assert "nope" in exc.value.message


@pytest.mark.parametrize(
    ("rule", "fragment"),
    [
        ("db", "missing '.'"),
        ("db tbl", "unexpected special character ' '"),
        ("db.", "empty schema or table pattern"),
        (".tbl", "empty schema or table pattern"),
        ("!", "empty schema or table pattern"),
        ("! db.t", "unexpected special character ' '"),
        ("db.t.x", "after the table pattern"),
        ("db..t", "empty schema or table pattern"),
        ("db.[a-z", "character set"),
        ("db.[]", "character set"),
        ("db.a]", "unexpected special character ']'"),
        ("db.[z-a]", "invalid character class range"),
        ("db.[\\d]", "character set"),
        ("db.t\\", "backslash cannot end"),
        ("db.tbl#not comment", "unexpected special character '#'"),
        ("a%b.c", "unexpected special character '%'"),
        ("[!].*", "missing closing ]"),
        ("/^t[0-9]+((?!_copy).)*$/.*", "unsupported group"),
        ("db.\\n", "cannot escape a letter or digit"),
        ('"db.t', "quoted name"),
        ('"".t', "quoted name"),
        ('"db"x.t', "missing '.'"),
        ("db.`t`x", "after the table pattern"),
        ("a`b`.t", "unexpected special character '`'"),
        ("/db.t", "regular expression"),
        ("//.t", "regular expression"),
        ("/db(/.t", "missing closing )"),
        ("/db)/.t", "unexpected )"),
        ("/[a/.t", "missing closing ]"),
        ("/a**/.t", "nested repetition"),
        ("/a*+/.t", "nested repetition"),
        ("/*a/.t", "missing argument"),
        ("/a{1001}/.t", "repeat count"),
        ("/a{3,2}/.t", "repeat count"),
        ("/(?=a)/.t", "unsupported group"),
        ("/(?<=a)b/.t", "unsupported group"),
        ("/(?-)a/.t", "unsupported group"),
        ("/(a)\\1/.t", "invalid escape"),
        ("/\\pL/.t", "Unicode classes"),
        ("/\\e/.t", "invalid escape"),
        ("/[[:nope:]]/.t", "invalid character class"),
        ("/\\x{110000}/.t", "invalid \\x escape"),
        ("@", "cannot read table filter file"),
    ],
)
def test_invalid_rules(rule: str, fragment: str) -> None:
    with pytest.raises(UsageError) as exc:
        TableFilter.parse(["*.*", rule])
    message = exc.value.message
    assert fragment in message
    assert f"'{rule}'" in message
    assert "\n" not in message
    assert exc.value.exit_code == 2


def test_parse_accepts_a_single_string() -> None:
    assert TableFilter.parse("db.*").match_table("db", "t")


@pytest.mark.parametrize(
    "schema",
    ["mysql", "sys", "INFORMATION_SCHEMA", "PERFORMANCE_SCHEMA", "METRICS_SCHEMA", "INSPECTION_SCHEMA"],
)
@pytest.mark.parametrize("case_sensitive", [False, True])
@pytest.mark.parametrize("spelling", [str.lower, str.upper, str.title])
def test_default_filter_excludes_system_schemas(schema: str, case_sensitive: bool, spelling: object) -> None:
    assert callable(spelling)
    name = spelling(schema)
    f = default_filter(case_sensitive=case_sensitive)
    assert not f.match_table(name, "t")
    assert not f.match_schema(name)


@pytest.mark.parametrize("name", ["app", "mysql2", "my_sys", "sys_app", "information_schema_copy", "Mysql.x"])
def test_default_filter_keeps_user_schemas(name: str) -> None:
    f = default_filter()
    assert f.match_table(name, "t")
    assert f.match_schema(name)


def test_default_rules() -> None:
    assert DEFAULT_RULES[0] == "*.*"
    assert default_filter().rules == DEFAULT_RULES
    assert isinstance(DEFAULT_RULES, tuple)


@pytest.mark.parametrize(
    ("rules", "name", "expected"),
    [
        (["*.*"], "mysql.user", True),  # a user filter replaces the default, system schemas included
        (["mysql.*"], "mysql.user", True),
        (["app.*"], "other.t", False),
    ],
)
def test_user_filter_replaces_default(rules: list[str], name: str, expected: bool) -> None:
    assert selected(rules, name) is expected
    schema, _, table = name.partition(".")
    assert filter_from_dumpling_flags([], [], rules, False).match_table(schema, table) is expected


@pytest.mark.parametrize(
    ("rules", "schema", "expected"),
    [
        (["db.t"], "db", True),  # a positive rule selects the schema, whatever its table pattern
        (["db.t"], "other", False),
        (["*.*", "!db.*"], "db", False),  # exclusion of the whole schema
        (["*.*", "!db.t"], "db", True),  # excluding one table keeps the schema
        (["*.*", "!db./.*/"], "db", True),  # only a literal * table pattern excludes a schema
        (["!db.*", "db.t"], "db", True),
        ([], "db", False),
    ],
)
def test_match_schema(rules: list[str], schema: str, expected: bool) -> None:
    assert TableFilter.parse(rules).match_schema(schema) is expected


# Dumpling's -B / -T / --filter


def test_no_flags_gives_the_default() -> None:
    f = filter_from_dumpling_flags([], [], [], False)
    assert f.rules == DEFAULT_RULES
    assert not f.match_table("mysql", "user")
    assert f.match_table("app", "t")
    assert f.databases is None and f.tables is None


@pytest.mark.parametrize(
    ("tables", "case_sensitive", "name", "expected"),
    [
        (["db.tbl"], False, ("db", "tbl"), True),
        (["db.tbl"], False, ("db", "other"), False),
        (["db.tbl", "db2.tbl2"], False, ("db2", "tbl2"), True),
        (["DB.Tbl"], False, ("db", "tbl"), True),
        (["DB.Tbl"], True, ("db", "tbl"), False),
        (["DB.Tbl"], True, ("DB", "Tbl"), True),
        (["db.t*"], False, ("db", "t*"), True),  # names are literal, not wildcards
        (["db.t*"], False, ("db", "tx"), False),
        (["db.a.b"], False, ("db", "a.b"), True),  # split at the first dot
        (["mysql.user"], False, ("mysql", "user"), True),  # -T bypasses the default exclusion
    ],
)
def test_tables_flag(tables: list[str], case_sensitive: bool, name: tuple[str, str], expected: bool) -> None:
    f = filter_from_dumpling_flags([], tables, [], case_sensitive)
    assert f.match_table(*name) is expected
    assert f.tables is not None and len(f.tables) == len(tables)


def test_tables_flag_rules_reparse_to_the_same_filter() -> None:
    f = filter_from_dumpling_flags([], ["my`db.t*", "db.a.b"], [], False)
    assert f.rules == ("`my``db`.`t*`", "`db`.`a.b`")
    again = TableFilter.parse(f.rules)
    assert again.match_table("my`db", "t*") and again.match_table("db", "a.b")
    assert f.match_schema("db") and not f.match_schema("x")


@pytest.mark.parametrize(
    "filter_rules",
    [
        list(DEFAULT_RULES),
        ["*.*", "!/^(mysql|sys|INFORMATION_SCHEMA|PERFORMANCE_SCHEMA|METRICS_SCHEMA|INSPECTION_SCHEMA)$/.*"],
    ],
)
def test_tables_flag_with_the_default_filter_spelled_out(filter_rules: list[str]) -> None:
    f = filter_from_dumpling_flags([], ["db.t"], filter_rules, False)
    assert f.match_table("db", "t") and not f.match_table("db", "u")


@pytest.mark.parametrize("filter_rules", [["*.foo"], ["*.*"], ["db.t"]])
def test_tables_flag_conflicts_with_filter(filter_rules: list[str]) -> None:
    with pytest.raises(UsageError, match="cannot pass -T/--tables-list together with --filter"):
        filter_from_dumpling_flags([], ["db.t"], filter_rules, False)


@pytest.mark.parametrize("name", ["db", "db.", ".t", ""])
def test_tables_flag_needs_qualified_names(name: str) -> None:
    with pytest.raises(UsageError, match="qualified names") as exc:
        filter_from_dumpling_flags([], [name], [], False)
    assert f"'{name}'" in exc.value.message


def test_tables_flag_ignores_databases_like_dumpling() -> None:
    f = filter_from_dumpling_flags(["other"], ["db.t"], [], False)
    assert f.match_table("db", "t")
    assert not f.match_table("other", "t")


@pytest.mark.parametrize(
    ("databases", "filter_rules", "name", "expected"),
    [
        (["db1", "db2"], [], ("db1", "t"), True),
        (["db1", "db2"], [], ("db2", "t"), True),
        (["db1", "db2"], [], ("db3", "t"), False),
        (["db1"], ["*.*", "!*.secret"], ("db1", "secret"), False),  # -B and --filter both apply
        (["db1"], ["*.*", "!*.secret"], ("db1", "t"), True),
        (["Db1"], [], ("db1", "t"), False),  # -B names must be spelled as the server lists them
        (["mysql"], ["mysql.*"], ("mysql", "user"), True),
    ],
)
def test_databases_flag(
    databases: list[str], filter_rules: list[str], name: tuple[str, str], expected: bool
) -> None:
    f = filter_from_dumpling_flags(databases, [], filter_rules, False)
    assert f.match_table(*name) is expected
    assert f.match_schema(name[0]) is (name[0] in databases)
    assert f.databases == tuple(databases)


@pytest.mark.parametrize(
    ("databases", "filter_rules"),
    [
        (["mysql"], []),  # Dumpling: "Unknown databases [mysql]" — the default excludes it
        (["app", "INFORMATION_SCHEMA"], []),
        (["db1"], ["db2.*"]),
        (["db1"], ["*.*", "!db1.*"]),
    ],
)
def test_databases_flag_excluded_by_filter(databases: list[str], filter_rules: list[str]) -> None:
    with pytest.raises(UsageError, match="excluded by the table filter"):
        filter_from_dumpling_flags(databases, [], filter_rules, False)


def test_match_many_tables_is_fast() -> None:
    f = TableFilter.parse(["*.*", "!/^tmp_/.*", "!*.bak_*", "db[0-9].*", '"x".`y`'])
    names = [(f"db{i % 10}", f"t{i}") for i in range(20000)]
    assert sum(f.match_table(s, t) for s, t in names) == 20000
