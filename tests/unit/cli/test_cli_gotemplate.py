"""hutch.cli.gotemplate: Go text/template semantics and Docker's --format functions."""
import pytest

from hutch.cli.gotemplate import TemplateError, is_table, parse, render, render_rows, sprintf

C = {
    "Id": "824522ae49f7ef49b2816e3395614a6670c3d46ce85d26b912ef5215b19f16fa",
    "Name": "/dup_C",
    "State": {"Status": "running", "Running": True, "Paused": False, "Pid": 4242,
              "ExitCode": 0, "Health": None},
    "Config": {"Labels": {"b": "2", "a": "x<y>&"}, "Env": ["PATH=/bin", "A=1"],
               "Cmd": ["sleep", "1000"]},
    "HostConfig": {"Memory": 209715200, "MemorySwap": 314572800, "BlkioWeight": 0},
    "Mounts": [{"Type": "volume", "Source": "/v/a", "Destination": "/data", "RW": True},
               {"Type": "bind", "Source": "/tmp", "Destination": "/t", "RW": False}],
    "Args": ["-c", "exit 42"],
    "Nothing": None,
    "Float": 1e6,
}


@pytest.mark.parametrize("tmpl, out", [
    ("{{.State.Status}}", "running"),
    ("{{.State.Status}} ExitCode={{.State.ExitCode}}", "running ExitCode=0"),
    ("Memory={{.HostConfig.Memory}} MemorySwap={{.HostConfig.MemorySwap}}",
     "Memory=209715200 MemorySwap=314572800"),
    ("{{.State.Running}} {{.State.Paused}}", "true false"),
    ("{{.Config.Labels}}", "map[a:x<y>& b:2]"),
    ("{{.Config.Env}}", "[PATH=/bin A=1]"),
    ("{{.Missing}}|{{.Nothing}}|{{.Missing.Deeper}}", "<no value>|<no value>|<no value>"),
    ("{{.Float}}", "1e+06"),
    ("{{json .State}}", '{"Status":"running","Running":true,"Paused":false,"Pid":4242,"ExitCode":0,"Health":null}'),
    ("{{json .Config.Labels}}", '{"b":"2","a":"x<y>&"}'),
    ("{{json .Float}} {{json .Args}}", '1000000 ["-c","exit 42"]'),
    ("{{range .Mounts}}{{.Source}}:{{.Destination}}:{{.RW}} {{end}}", "/v/a:/data:true /tmp:/t:false "),
    ("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}},{{end}}", "a=x<y>&,b=2,"),
    ("{{range $i, $e := .Args}}{{$i}}:{{$e}};{{end}}", "0:-c;1:exit 42;"),
    ("{{range $e := .Args}}[{{$e}}]{{end}}", "[-c][exit 42]"),
    ("{{range .Nothing}}x{{else}}empty{{end}}", "empty"),
    ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
    ("{{if .State.Paused}}p{{else if eq .State.Status \"running\"}}r{{else}}x{{end}}", "r"),
    ("{{with .State}}{{.Pid}}{{end}}{{with .Nothing}}no{{else}}none{{end}}", "4242none"),
    ('{{index .Config.Labels "a"}}|{{index .Config.Labels "zz"}}|{{index .Args 1}}', "x<y>&||exit 42"),
    ('{{printf "%s has pid %d" .Name .State.Pid}}', "/dup_C has pid 4242"),
    ('{{printf "%-8s|%5d|%x|%q|%v|%.2f|%t" "ab" 42 255 "q" .Args 3.14159 true}}',
     'ab      |   42|ff|"q"|[-c exit 42]|3.14|true'),
    ("{{upper .State.Status}} {{lower \"ABC\"}} {{title \"hello big-world\"}}", "RUNNING abc Hello Big-World"),
    ("{{.State.Status | upper}}", "RUNNING"),
    ("{{len .Args}} {{len .Config.Labels}} {{len .Name}}", "2 2 6"),
    ('{{join .Args ","}}', "-c,exit 42"),
    ('{{split "a:b:c" ":"}}', "[a b c]"),
    ('{{index (split .Name "_") 1}}', "C"),
    ('{{pad "x" 1 2}}|{{pad "" 1 2}}|{{truncate .Id 12}}', " x  ||824522ae49f7"),
    ("{{$id := .Id}}{{range .Args}}{{$id | printf \"%.4s\"}}{{end}}", "82458245"),
    ("{{$n := 1}}{{if true}}{{$n = 2}}{{end}}{{$n}}", "2"),
    ("{{range .Args}}{{$.Name}}{{end}}", "/dup_C/dup_C"),
    ('{{eq .State.Status "running" "paused"}} {{ne 1 2}} {{lt 1 2}} {{le 2 2}} {{gt "b" "a"}} {{ge 1 2}}',
     "true true true true true false"),
    ("{{and 1 0}} {{and 1 2}} {{or 0 \"\"}} {{or 0 3}} {{not .State.Paused}}", "0 2  3 true"),
    ("{{or .Missing .Nothing}}", "<no value>"),
    ("a  {{- .State.Pid -}}  b", "a4242b"),
    ("a {{- /* comment */ -}} b", "ab"),
    ("{{/* only a comment */}}", ""),
    ("{{range .Config.Env}}{{if eq . \"A=1\"}}{{break}}{{end}}{{.}} {{end}}", "PATH=/bin "),
    ("{{range .Args}}{{if eq . \"-c\"}}{{continue}}{{end}}{{.}}{{end}}", "exit 42"),
    ('{{define "m"}}<{{.Destination}}>{{end}}{{range .Mounts}}{{template "m" .}}{{end}}', "</data></t>"),
    ("{{(index .Mounts 1).Type}}", "bind"),
    ('{{"quoted\\t"}}{{`raw\\t`}}{{\'a\'}}{{0x10}}{{1.5}}{{-3}}', "quoted\traw\\t97161.5-3"),
    ("{{print 1 2 \"a\" \"b\" 3}}|{{println 1 \"a\"}}", "1 2ab3|1 a\n"),
    ('{{html "<a&b>"}} {{urlquery "a b&c"}} {{js "it\'s"}}', "&lt;a&amp;b&gt; a+b%26c it\\'s"),
    ("{{slice .Args 1}} {{slice .Name 1 4}}", "[exit 42] dup"),
])
def test_render(tmpl, out):
    assert render(tmpl, C) == out


@pytest.mark.parametrize("tmpl, message", [
    ("{{.Id}", 'template: :1: unexpected "}" in operand'),
    ("{{.Id", "template: :1: unclosed action"),
    ("{{foo .Id}}", 'template: :1: function "foo" not defined'),
    ("{{if .Id}}x", "template: :1: unexpected EOF"),
    ("{{end}}", "template: :1: unexpected {{end}}"),
    ("{{else}}", "template: :1: unexpected {{else}}"),
    ("{{$x}}", 'template: :1: undefined variable "$x"'),
    ("{{if true}}{{$y := 1}}{{end}}{{$y}}", 'template: :1: undefined variable "$y"'),
    ("{{}}", "template: :1: missing value for command"),
    ("{{if}}{{end}}", "template: :1: missing value for if"),
    ("{{.Id | }}", "template: :1: missing command"),
    ('{{"a" | "b"}}', "template: :1: non executable command in pipeline stage 2"),
    ('{{"abc}}', "template: :1: unterminated quoted string"),
    ("{{break}}", "template: :1: {{break}} outside {{range}}"),
    ("x\n{{1x}}", 'template: :2: bad number syntax: "1x"'),
])
def test_parse_errors(tmpl, message):
    with pytest.raises(TemplateError) as e:
        parse(tmpl)
    assert str(e.value) == message and e.value.parse


@pytest.mark.parametrize("tmpl, message", [
    ("{{.State.Health.Status}}", 'template: :1:2: executing "" at <.State.Health.Status>: '
                                 "nil pointer evaluating interface {}.Status"),
    ("{{.Name.X}}", 'template: :1:2: executing "" at <.Name.X>: can\'t evaluate field X in type string'),
    ("{{eq .Name 1}}", 'template: :1:2: executing "" at <eq .Name 1>: error calling eq: '
                       "incompatible types for comparison"),
    ("{{index .Args 5}}", 'template: :1:2: executing "" at <index .Args 5>: error calling index: '
                          "index out of range: 5"),
    ("{{upper .State.Pid}}", 'template: :1:2: executing "" at <upper .State.Pid>: '
                             "wrong type for value; expected string; got int"),
    ("{{range .Name}}{{end}}", 'template: :1:8: executing "" at <.Name>: range can\'t iterate over /dup_C'),
    ("{{join .Name \",\"}}", 'template: :1:2: executing "" at <join .Name ",">: '
                             "wrong type for value; expected []string; got string"),
])
def test_exec_errors(tmpl, message):
    with pytest.raises(TemplateError) as e:
        render(tmpl, C)
    assert str(e.value) == message and not e.value.parse


def test_objects_are_structs_with_methods():
    class Row:
        ID = "abc"

        def Label(self, name):
            return {"com.x": "1"}.get(name, "")

    assert render('{{.ID}} {{.Label "com.x"}}', Row()) == "abc 1"
    with pytest.raises(TemplateError, match="can't evaluate field Nope in type Row"):
        render("{{.Nope}}", Row())


def test_printf_bad_verbs_and_counts():
    assert sprintf("%d", "x") == "%!d(string=x)"
    assert sprintf("%s %s", "a") == "a %!s(MISSING)"
    assert sprintf("%s", "a", 1) == "a%!(EXTRA int=1)"
    assert sprintf("%5.1f%%", 12.345) == " 12.3%"
    assert sprintf("%03d|%+d|%X", 7, 5, 255) == "007|+5|FF"


def test_table_mode_like_docker_ps():
    rows = [{"ID": "4338f9f1081b", "Names": "xenodochial_shockley", "Status": "Created"},
            {"ID": "88662a2e8432", "Names": "sharp_panini", "Status": "Created"}]
    headers = {"ID": "CONTAINER ID", "Names": "NAMES", "Status": "STATUS"}
    fmt = "table {{.ID}}\\t{{.Names}}\\t{{.Status}}"
    assert is_table(fmt) and not is_table("{{.ID}}")
    assert render_rows(fmt, rows, headers) == (
        "CONTAINER ID   NAMES                  STATUS\n"
        "4338f9f1081b   xenodochial_shockley   Created\n"
        "88662a2e8432   sharp_panini           Created\n")
    assert render_rows(fmt, [], headers) == "CONTAINER ID   NAMES     STATUS\n"
    # functions leave the header alone, as Docker's HeaderFunctions do
    assert render_rows("table {{upper .Names}}", rows[:1], {"Names": "NAMES"}) == \
        "NAMES\nXENODOCHIAL_SHOCKLEY\n"
    assert render_rows("{{.Names}} {{.Status}}", rows) == \
        "xenodochial_shockley Created\nsharp_panini Created\n"
    assert render_rows("table", rows[:1], headers, default_table="{{.ID}}\t{{.Status}}") == \
        "CONTAINER ID   STATUS\n4338f9f1081b   Created\n"


def test_callable_dict_values_are_methods():
    labels = {"com.x": "1"}
    row = {"ID": "abc", "Label": lambda name: labels.get(name, "")}
    assert render('{{.ID}} {{.Label "com.x"}}|{{.Label "nope"}}|', row) == "abc 1||"
    assert render("{{json .}}", row) == '{"ID":"abc"}'
    with pytest.raises(TemplateError, match="ID is not a method but has arguments"):
        render('{{.ID "x"}}', row)
