"""Render a Helm chart offline, for tests: helm is not packaged for Debian
or PyPI, so this renders the small subset of Go templates that the chart in
deploy/helm/ is written in, and refuses everything else, so what it renders
is what `helm template` renders.

Usage: render_chart.py CHART_DIR OUT_DIR [--set key.path=value]...
           [--release NAME] [--namespace NS]

Supported actions (with `{{-` / `-}}` whitespace trimming and `/* */` comments):
  {{ .Values.a.b }}  {{ .Release.Name }}  {{ .Release.Namespace }}
  {{ .Chart.Name }}  {{ .Chart.Version }}  {{ .Chart.AppVersion }}
  {{ X | quote }}  {{ X | nindent N }}  {{ toYaml X | nindent N }}
  {{ if X }} / {{ if not X }} / {{ else }} / {{ end }}
Each template renders to one file in OUT_DIR; one that renders to nothing
but whitespace is left out, as helm leaves it out.
"""

import json
import os
import re
import sys

import yaml

ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.S)


class TemplateError(Exception):
    pass


def lookup(path, ctx):
    if not path.startswith("."):
        raise TemplateError(f"unsupported value {path!r}")
    node = ctx
    for part in path[1:].split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def go_str(v):
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def truthy(v):
    return not (v is None or v is False or v == 0 or v == "" or v == [] or v == {})


def to_yaml(v):
    return yaml.safe_dump(v, default_flow_style=False, sort_keys=True).rstrip("\n")


def evaluate(expr, ctx):
    stages = [s.strip() for s in expr.split("|")]
    head = stages[0].split()
    if len(head) == 1:
        found = lookup(head[0], ctx)
        if isinstance(found, (dict, list)):
            raise TemplateError(f"{head[0]} is a map or list: use toYaml")
        value = go_str(found)
    elif len(head) == 2 and head[0] == "toYaml":
        value = to_yaml(lookup(head[1], ctx))
    else:
        raise TemplateError(f"unsupported expression {stages[0]!r}")
    for stage in stages[1:]:
        words = stage.split()
        if words == ["quote"]:
            value = json.dumps(value)
        elif len(words) == 2 and words[0] == "nindent" and words[1].isdigit():
            pad = " " * int(words[1])
            value = "\n" + "\n".join(pad + line if line else line for line in value.split("\n"))
        else:
            raise TemplateError(f"unsupported function {stage!r}")
    return value


def render(text, ctx):
    # Tokens: ("text", s) and ("action", expr), trimming applied.
    tokens = []
    pos = 0
    for m in ACTION.finditer(text):
        before = text[pos:m.start()]
        if m.group(1):
            before = before.rstrip(" \t\r\n")
        tokens.append(["text", before])
        tokens.append(["action", m.group(2), bool(m.group(3))])
        pos = m.end()
    tokens.append(["text", text[pos:]])
    for i, t in enumerate(tokens):
        if t[0] == "action" and t[2] and i + 1 < len(tokens):
            tokens[i + 1][1] = tokens[i + 1][1].lstrip(" \t\r\n")

    out = []
    # A stack of (active, branch_taken) for nested ifs.
    stack = []

    def active():
        return all(a for a, _ in stack)

    for t in tokens:
        if t[0] == "text":
            if active():
                out.append(t[1])
            continue
        expr = t[1]
        if expr.startswith("/*") and expr.endswith("*/"):
            continue
        words = expr.split()
        if words and words[0] == "if":
            cond = words[1:]
            if len(cond) == 1:
                value = truthy(lookup(cond[0], ctx))
            elif len(cond) == 2 and cond[0] == "not":
                value = not truthy(lookup(cond[1], ctx))
            else:
                raise TemplateError(f"unsupported condition {expr!r}")
            stack.append((value, value))
        elif words == ["else"]:
            if not stack:
                raise TemplateError("else without if")
            _, taken = stack.pop()
            stack.append((not taken, True))
        elif words == ["end"]:
            if not stack:
                raise TemplateError("end without if")
            stack.pop()
        elif active():
            out.append(evaluate(expr, ctx))
        else:
            evaluate(expr, ctx)
    if stack:
        raise TemplateError("if without end")
    return "".join(out)


def parse_set(values, assignment):
    key, sep, raw = assignment.partition("=")
    if not sep:
        raise TemplateError(f"--set {assignment!r}: use key.path=value")
    value = yaml.safe_load(raw) if raw else ""
    node = values
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    chart, out_dir = argv[1], argv[2]
    release, namespace, sets = "otlp-client", "otlp", []
    rest = argv[3:]
    while rest:
        flag = rest.pop(0)
        if not rest:
            print(f"{flag} needs a value", file=sys.stderr)
            return 2
        if flag == "--set":
            sets.append(rest.pop(0))
        elif flag == "--release":
            release = rest.pop(0)
        elif flag == "--namespace":
            namespace = rest.pop(0)
        else:
            print(f"unknown flag {flag}", file=sys.stderr)
            return 2
    with open(os.path.join(chart, "Chart.yaml")) as f:
        meta = yaml.safe_load(f)
    with open(os.path.join(chart, "values.yaml")) as f:
        values = yaml.safe_load(f) or {}
    try:
        for s in sets:
            parse_set(values, s)
        ctx = {
            "Values": values,
            "Release": {"Name": release, "Namespace": namespace},
            "Chart": {
                "Name": meta.get("name"),
                "Version": meta.get("version"),
                "AppVersion": meta.get("appVersion"),
            },
        }
        os.makedirs(out_dir, exist_ok=True)
        templates = os.path.join(chart, "templates")
        for name in sorted(os.listdir(templates)):
            if not name.endswith((".yaml", ".yml")):
                continue
            with open(os.path.join(templates, name)) as f:
                rendered = render(f.read(), ctx)
            if rendered.strip():
                with open(os.path.join(out_dir, name), "w") as f:
                    f.write(rendered.strip("\n") + "\n")
                print(name)
    except TemplateError as e:
        print(f"render_chart: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
