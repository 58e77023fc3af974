#!/usr/bin/env python3
"""Write tests/unit/jinja_cases.h: template cases with the output jinja2 gives them in
transformers' chat-template environment (transformers.utils.chat_template_utils
._compile_jinja_template: ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks,
loopcontrols, raise_exception, tojson). Cases that raise there are written as errors.
Usage: /work/venv-ref/bin/python tools/gen_jinja_cases.py > tests/unit/jinja_cases.h"""
import json
import sys

import jinja2
import transformers
from transformers.utils.chat_template_utils import _compile_jinja_template

MSGS = [{"role": "system", "content": "S"}, {"role": "user", "content": " hi "},
        {"role": "assistant", "content": "yo", "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}]}]
V = {"messages": MSGS, "bos_token": "<s>", "x": 3, "f": 2.5, "s": "Hello World", "l": [3, 1, 2],
     "d": {"b": 1, "a": [1, 2], "c": None}, "n": None, "t": True, "u": "é日本"}

CASES = [
    # statements
    ("{% if x > 2 %}a{% elif x %}b{% else %}c{% endif %}", V),
    ("{% if n %}a{% elif t %}b{% endif %}", V),
    ("{% for i in l %}{{ i }}{% if not loop.last %},{% endif %}{% endfor %}", V),
    ("{% for i in l %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.length }}{{ loop.revindex }}|{% endfor %}", V),
    ("{% for i in l %}{{ loop.previtem is defined }}{{ loop.nextitem }}{% endfor %}", V),
    ("{% for i in [] %}a{% else %}empty{% endfor %}", V),
    ("{% for i in l if i > 1 %}{{ i }}{{ loop.length }}{% endfor %}", V),
    ("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", V),
    ("{% for k, v in d|items %}{{ k }}{% endfor %}{% for k in d %}{{ k }}{% endfor %}", V),
    ("{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %}", V),
    ("{% set y = 1 %}{% for i in l %}{% set y = i %}{% endfor %}{{ y }}", V),
    ("{% set ns = namespace(y=1, z='a') %}{% for i in l %}{% set ns.y = ns.y + i %}{% endfor %}{{ ns.y }}{{ ns.z }}", V),
    ("{% set a, b = 1, 2 %}{{ a }}{{ b }}", V),
    ("{% set blk %}  in block {{ x }}  {% endset %}[{{ blk }}]", V),
    ("{% set blk | trim | upper %}  in block  {% endset %}[{{ blk }}]", V),
    ("{% macro m(a, b='B') %}<{{ a }}{{ b }}>{% endmacro %}{{ m(1) }}{{ m(2, b=3) }}{{ m('x', 'y') }}", V),
    ("{% macro m() %}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, k=3) }}", V),
    ("{% macro m(a) %}[{{ caller() }}{{ a }}]{% endmacro %}{% call m(1) %}inner{% endcall %}", V),
    ("{% filter upper %}abc{{ x }}{% endfilter %}", V),
    ("{% raw %}{{ not evaluated }}{% endraw %}", V),
    ("{# comment #}a{# another\nline #}b", V),
    ("{% generation %}gen{% endgeneration %}", V),
    # whitespace control (trim_blocks, lstrip_blocks, -, +)
    ("a\n  {% if t %}\n  b\n  {% endif %}\nc\n", V),
    ("a  {%- if t -%}  b  {%- endif -%}  c", V),
    ("a {{- x -}} b {{ x }} c", V),
    ("  {%+ if t %}x{% endif %}", V),
    ("{% if t +%}\nx{% endif %}", V),
    ("a\n  {# c #}\nb", V),
    ("line1\r\nline2\rline3\n", V),
    ("x  {{ x }}\n  {% for i in l %}\n    {{ i }}\n  {% endfor %}\nend", V),
    # expressions
    ("{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 7 / 2 }} {{ 4 / 2 }}", V),
    ("{{ 'a' ~ 1 ~ none ~ true }} {{ 'ab' + 'cd' }} {{ 'ab' * 3 }} {{ [1] + [2] }}", V),
    ("{{ x > 2 and x < 4 }} {{ n or 'dflt' }} {{ not t }} {{ 1 < x < 5 }} {{ 'a' if t else 'b' }} {{ 'a' if n }}|", V),
    ("{{ 'ell' in s }} {{ 3 in l }} {{ 'b' in d }} {{ 9 not in l }} {{ 'z' in n|default([]) }}", V),
    ("{{ s[0] }}{{ s[-1] }}{{ s[1:4] }}{{ s[::-1] }}{{ s[::2] }}{{ l[-1] }}{{ l[1:] }}{{ u[1] }}{{ u[::-1] }}", V),
    ("{{ d.b }}{{ d['a'][1] }}{{ d.missing }}|{{ d.a.0 }}{{ messages[1].content }}{{ messages[2]['tool_calls'][0].function.name }}", V),
    ("{{ [1, 'a', none, true, 2.5, [1], {'k': 'v'}] }} {{ (1, 2) }} {{ (1,) }} {{ {'a': 1} }}", V),
    ("{{ 'it''s' }} {{ \"q'\" }} {{ 'a\\nb\\t\\x41\\u00e9' }} {{ \"dq\\\"\" }}", V),
    ("{{ none }} {{ true }} {{ false }} {{ True }} {{ 1.0 }} {{ 1e20 }} {{ 0.1 + 0.2 }} {{ 1.5e-7 }} {{ 100000000000000000.0 }}", V),
    ("{{ undefined_name }}|{{ undefined_name is defined }}|{{ undefined_name is undefined }}", V),
    # filters
    ("{{ s|upper }} {{ s|lower }} {{ 'hello world'|title }} {{ 'hELLO'|capitalize }} {{ '  x  '|trim }} {{ 'xxhixx'|trim('x') }}", V),
    ("{{ s|length }} {{ u|length }} {{ l|count }} {{ d|length }} {{ l|first }} {{ l|last }} {{ l|join(', ') }} {{ l|join }}", V),
    ("{{ n|default('D') }} {{ nope|default('D') }} {{ ''|default('E', true) }} {{ nope|d('x') }}", V),
    ("{{ s|replace('o', '0') }} {{ s|replace('o', '0', 1) }} {{ 'abc'|list }} {{ l|sort }} {{ l|sort(reverse=true) }} {{ l|reverse|list }}", V),
    ("{{ d|tojson }} {{ messages[2]|tojson }} {{ u|tojson }} {{ 'a\"b\\n'|tojson }} {{ f|tojson }} {{ none|tojson }}", V),
    ("{{ d|tojson(indent=2) }}|{{ l|tojson(separators=(',', ':')) }}|{{ d|tojson(sort_keys=true) }}|{{ u|tojson(ensure_ascii=true) }}", V),
    ("{{ '3'|int + 1 }} {{ '3.7'|int }} {{ 'x'|int }} {{ 'x'|int(7) }} {{ 2.9|int }} {{ '2.5'|float }} {{ x|float }} {{ x|string ~ 'a' }}", V),
    ("{{ 2.567|round(1) }} {{ 2.5|round }} {{ 3.5|round }} {{ -3|abs }} {{ [3, 1, 2]|max }} {{ [3, 1, 2]|min }} {{ [1, 2]|sum }}", V),
    ("{{ messages|map(attribute='role')|list }} {{ messages|selectattr('role', 'equalto', 'user')|list|length }} {{ messages|rejectattr('role', 'eq', 'user')|map(attribute='content')|join(',') }}", V),
    ("{{ l|select('odd')|list }} {{ l|reject('odd')|list }} {{ ['a', 'B', 'a']|unique|list }} {{ ['a', 'B']|map('upper')|list }} {{ messages|selectattr('tool_calls', 'defined')|list|length }}", V),
    ("{{ 'a\\nb\\n\\nc'|indent }}|{{ 'a\\nb'|indent(2, true) }}|{{ 'a\\n\\nb'|indent(2, blank=true) }}", V),
    ("{{ d|dictsort }} {{ {'b': 1, 'A': 2}|dictsort }} {{ d|items|list }}", V),
    ("{{ '<a&b>'|e }} {{ '<x>'|safe }} {{ ('<x>'|safe) + '<y>' }} {{ 'a'|safe ~ '<y>' }}", V),
    # tests
    ("{{ x is number }}{{ f is float }}{{ x is integer }}{{ s is string }}{{ d is mapping }}{{ l is iterable }}{{ l is sequence }}{{ n is none }}{{ t is boolean }}{{ t is true }}{{ false is false }}", V),
    ("{{ x is odd }}{{ x is even }}{{ 9 is divisibleby 3 }}{{ x is eq 3 }}{{ x is equalto 4 }}{{ x is gt 1 }}{{ 'ab' is lower }}{{ 'AB' is upper }}{{ 2 is in l }}{{ s is not string }}", V),
    # methods
    ("{{ ' a b '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ ' a '.lstrip() }}|{{ ' a '.rstrip() }}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'a b c'.split(' ', 1) }}|{{ 'a b c'.rsplit(' ', 1) }}", V),
    ("{{ s.startswith('He') }}{{ s.endswith(('x', 'ld')) }}{{ s.replace('l', 'L') }}{{ s.upper() }}{{ s.lower() }}{{ s.find('o') }}{{ s.count('o') }}{{ 'hello world'.title() }}{{ '-'.join(['a', 'b']) }}", V),
    ("{{ d.get('b') }}{{ d.get('zz') }}{{ d.get('zz', 5) }}{{ d.keys()|list }}{{ d.values()|list }}{{ '{}-{}'.format(1, 'a') }}{{ '{0}{0}'.format('z') }}", V),
    ("{{ strftime_now('%Y') | length }} {{ range(3)|list }} {{ range(1, 7, 2)|list }} {{ dict(a=1) }} {{ namespace(a=1).a }}", V),
    ("{{ messages[0]['content'] if messages[0]['role'] == 'system' else '' }}{% for m in messages[1:] %}[{{ m.role }}:{{ m.content|trim }}]{% endfor %}", V),
    # errors (the output is checked as an error)
    ("{{ raise_exception('bad role') }}", V),
    ("{{ nope.attr }}", V),
    ("{{ l.append(4) }}", V),
    ("{{ 1 / 0 }}", V),
    ("{{ x|nofilter }}", V),
    ("{{ [1]|map('upper')|tojson }}", V),
    ("{{ n|length }}", V),
    ("{% for a, b in l %}{% endfor %}", V),
    ("{{ 'a' + 1 }}", V),
    ("{% if x %}unclosed", V),
    ("{{ x + }}", V),
    ("{% endfor %}", V),
    ("{{ 'abc }}", V),
    ("{% for %}", V),
]


def c_str(s):
    out = []
    for b in s.encode("utf-8"):
        ch = chr(b)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif 32 <= b < 127 and ch != "?":
            out.append(ch)
        else:
            out.append("\\%03o" % b)
    return '"' + "".join(out) + '"'


print(f"/* Generated by tools/gen_jinja_cases.py from jinja2 {jinja2.__version__} in transformers "
      f"{transformers.__version__}'s chat-template environment; do not edit. */")
print("static const char JINJA_VARS[] = " + c_str(json.dumps(V, ensure_ascii=False)) + ";")
print("static const struct { const char *tpl; const char *want; } JINJA_CASES[] = {")
for tpl, v in CASES:
    try:
        out = _compile_jinja_template(tpl).render(**v)
        if "strftime_now" in tpl:
            pass
        print(f"    {{{c_str(tpl)}, {c_str(out)}}},")
    except Exception as e:
        print(f"    {{{c_str(tpl)}, NULL}}, /* {type(e).__name__}: {str(e)[:60].replace('*/', '')} */")
print("};")
