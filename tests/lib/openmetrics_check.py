#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""openmetrics_check.py FILE [--json]: check FILE against the OpenMetrics text
format as cfserver writes it (cfserver/cf_metrics.c), exit 1 with the line on
the first violation. Checked: every line is a '# TYPE', '# HELP', '# UNIT'
line or a sample; the text ends with '# EOF' and a newline, nothing after it;
a family's TYPE comes before its samples, once, and its samples are together;
counter samples end in _total (or _created), histogram samples are _bucket
with an 'le' label, _count or _sum, and the +Inf bucket equals _count; label
sets are name="value" with escaped values; every value is a number. With
--json, prints {"name{labels}": value} of every sample."""
import json
import math
import re
import sys

NAME = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(r'^(' + NAME + r')(\{(?:' + LABEL + r')(?:,' + LABEL + r')*\})? (\S+)$')
TYPES = {'counter', 'gauge', 'histogram', 'summary', 'info', 'stateset', 'gaugehistogram', 'unknown'}
SUFFIXES = {'counter': ['_total', '_created'], 'histogram': ['_bucket', '_count', '_sum', '_created'],
            'summary': ['_count', '_sum', '_created', ''], 'gauge': [''], 'info': ['_info'], 'unknown': [''],
            'stateset': [''], 'gaugehistogram': ['_bucket', '_gcount', '_gsum']}


def fail(n, line, why):
    print(f"openmetrics: line {n}: {why}: {line!r}", file=sys.stderr)
    sys.exit(1)


def number(s):
    if s in ('+Inf', 'Inf', '-Inf', 'NaN'):
        return float(s.replace('Inf', 'inf').replace('NaN', 'nan'))
    if not re.fullmatch(r'[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?', s):
        raise ValueError(s)
    return float(s)


def main():
    text = open(sys.argv[1], encoding='utf-8').read()
    if not text.endswith('# EOF\n'):
        fail(0, text[-40:], 'does not end with "# EOF" and a newline')
    lines = text[:-1].split('\n')
    types, done, cur = {}, set(), None
    samples, inf_bucket, counts = {}, {}, {}
    for n, line in enumerate(lines, 1):
        if line == '# EOF':
            if n != len(lines):
                fail(n, line, '"# EOF" before the end')
            break
        if line.startswith('#'):
            m = re.fullmatch(r'# (TYPE|HELP|UNIT) (' + NAME + r')(?: (.*))?', line)
            if not m:
                fail(n, line, 'not a TYPE, HELP or UNIT line')
            kind, fam, rest = m.groups()
            if kind == 'TYPE':
                if fam in types:
                    fail(n, line, 'family declared twice')
                if rest not in TYPES:
                    fail(n, line, 'unknown type')
                types[fam] = rest
                if cur:
                    done.add(cur)
                cur = fam
            elif fam != cur:
                fail(n, line, 'HELP/UNIT of a family that is not the current one')
            elif kind == 'UNIT' and not fam.endswith('_' + (rest or '')):
                fail(n, line, 'a family with a UNIT must end in _unit')
            continue
        m = SAMPLE.match(line)
        if not m:
            fail(n, line, 'not a sample "name{labels} value"')
        name, labels, value = m.groups()
        try:
            v = number(value)
        except ValueError:
            fail(n, line, 'value is not a number')
        fam = next((f for f in types for s in SUFFIXES[types[f]] if name == f + s), None)
        if fam is None:
            fail(n, line, 'sample of no declared family (or a counter without _total)')
        if fam != cur:
            fail(n, line, f'sample of family {fam} outside its block (current: {cur})')
        if types[fam] == 'counter' and (v < 0 or math.isnan(v)):
            fail(n, line, 'negative counter')
        if types[fam] == 'histogram' and name.endswith('_bucket'):
            if not labels or 'le="' not in labels:
                fail(n, line, 'bucket without le')
            if 'le="+Inf"' in labels:
                inf_bucket[fam] = v
        if types[fam] == 'histogram' and name.endswith('_count'):
            counts[fam] = v
        key = name + (labels or '')
        if key in samples:
            fail(n, line, 'sample repeated')
        samples[key] = v
    for fam, t in types.items():
        if t == 'histogram' and inf_bucket.get(fam) != counts.get(fam):
            fail(0, fam, 'the +Inf bucket differs from _count')
    if len(sys.argv) > 2 and sys.argv[2] == '--json':
        json.dump(samples, sys.stdout)
        print()


main()
