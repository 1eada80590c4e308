"""Chat-template conformance fixtures: jinja2 renders them the way transformers does, modeldiff must match.

transformers renders chat templates with jinja2's ImmutableSandboxedEnvironment(trim_blocks=True,
lstrip_blocks=True, extensions=[loopcontrols]) plus its own tojson, raise_exception and strftime_now
(utils/chat_template_utils.py). This script does the same for templates written to exercise what real releases'
templates use (namespace, tools, tojson, slicing, loop variables, string methods, macros, whitespace control) and
writes the outputs next to them. No model, no network: jinja2 alone (run here with jinja2 3.1.6).

Usage: python3 render_templates.py src/test/resources/tokenizers/templates
"""
import json
import os
import sys
from datetime import datetime

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def strftime_now(fmt):
    return datetime.now().strftime(fmt)


def env():
    e = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    e.filters["tojson"] = tojson
    e.globals["raise_exception"] = raise_exception
    e.globals["strftime_now"] = strftime_now
    return e


TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
CHATS = {
    "one": [{"role": "user", "content": "Hello!"}],
    "system": [{"role": "system", "content": "  Be brief.  "}, {"role": "user", "content": "Hi"},
               {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Again\n"}],
    "unicode": [{"role": "user", "content": "日本語 🙂‍↔️ \"quotes\" \\ back"}],
    "think": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "<think>add</think>\n\n4"}],
}

TEMPLATES = {
    # Qwen-style: tools in the system block via tojson, attribute access, think-stripping with split
    "qwen_like": """{%- if tools %}
{{- '<|im_start|>system\\n' }}{%- if messages[0].role == 'system' %}{{- messages[0].content + '\\n\\n' }}{%- endif %}
{{- "# Tools\\n<tools>" }}{%- for tool in tools %}{{- "\\n" }}{{- tool | tojson }}{%- endfor %}{{- "\\n</tools><|im_end|>\\n" }}
{%- elif messages[0].role == 'system' %}{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}{%- endif %}
{%- for message in messages %}
  {%- if message.role == 'user' or (message.role == 'system' and not loop.first) %}
    {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
  {%- elif message.role == 'assistant' %}
    {%- set content = message.content %}
    {%- if '</think>' in content %}{%- set content = content.split('</think>')[-1].lstrip('\\n') %}{%- endif %}
    {{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>\\n' }}
  {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}""",
    # Llama-3.1-style: namespace, date, tools as JSON with indent, system message extraction
    "llama31_like": """{{- bos_token }}
{%- if not date_string is defined %}{%- set date_string = "26 Jul 2024" %}{%- endif %}
{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content']|trim %}{%- set messages = messages[1:] %}
{%- else %}{%- set system_message = "" %}{%- endif %}
{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}
{{- "Cutting Knowledge Date: December 2023\\n" }}{{- "Today Date: " + date_string + "\\n\\n" }}
{%- if tools is not none and tools is defined %}{{- "You have tools:\\n" }}{%- for t in tools %}{{- t | tojson(indent=4) }}{{- "\\n\\n" }}{%- endfor %}{%- endif %}
{{- system_message }}{{- "<|eot_id|>" }}
{%- set ns = namespace(n_user=0) %}
{%- for message in messages %}
    {%- if message.role == 'user' %}{%- set ns.n_user = ns.n_user + 1 %}{%- endif %}
    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}
{{- '' if ns.n_user > 0 else raise_exception('no user message') }}""",
    # Gemma-style: alternation check with raise_exception, role renaming, loop.index0 % 2
    "gemma_like": """{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}
{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}
{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}
{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}
{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}""",
    # Mistral-style: [INST], system folded into the first user turn, eos after assistant, loop.last
    "mistral_like": """{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content'] %}{%- set loop_messages = messages[1:] %}
{%- else %}{%- set loop_messages = messages %}{%- endif %}
{{- bos_token }}
{%- for message in loop_messages %}
    {%- if message['role'] == 'user' %}
        {%- if loop.first and system_message is defined %}{{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}
        {%- else %}{{- ' [INST] ' + message['content'] + ' [/INST]' }}{%- endif %}
    {%- elif message['role'] == 'assistant' %}{{- ' ' + message['content'] + eos_token}}
    {%- else %}{{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') }}
    {%- endif %}
{%- endfor %}""",
    # Phi-3-style plain template with plain (non-dash) tags and newlines
    "phi3_like": """{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\\n' + message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\\n' + message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\\n' + message['content'] + '<|end|>\\n'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}""",
    # Features: macros, filters, tests, loop controls, dict iteration, strftime_now, string methods. Bare booleans and
    # None are not printed: jinjava prints true/false and nothing where Python prints True/False/None
    # (ChatTemplateSandboxTest.knownDifferencesFromJinja2); templates print strings.
    "features": """{% macro render(m) -%}
[{{ m['role'] | upper }}:{{ m['content'] | length }}]
{%- endmacro %}
{% for m in messages %}{{ render(m) }}{% if loop.last %}!{% else %},{% endif %}{% endfor %}
{% for m in messages %}{% if loop.index > 2 %}{% break %}{% endif %}{{ loop.index }}/{{ loop.length }}{% endfor %}
{% for m in messages %}{% if m.role == 'system' %}{% continue %}{% endif %}{{ m.content.strip().lower().replace('hi', 'HI') }}|{% endfor %}
{% for k, v in {'a': 1, 'b': [1, 2]}.items() %}{{ k }}={{ v | tojson }};{% endfor %}
{{ messages | map(attribute='role') | join(',') }} {{ messages | selectattr('role', 'equalto', 'user') | list | length }}
{{ (strftime_now('%Y') | length) }} {{ 'x' if add_generation_prompt else 'y' }} {{ 'yes' if messages[-1]['content'].startswith('Hel') else 'no' }}
{{ 'a,b,,c'.split(',') | tojson }} {{ '  pad  '.rstrip() }}| {{ 'yes' if messages[0]['content'].endswith(('!', '?')) else 'no' }}
{{ messages | tojson }} {{ (messages[0] | tojson(indent=2)) | length }} {{ 'NBSP\u00a0' | trim | length }} {{ '%s-%d' | format('a', 3) }}
{%- if messages | length > 1 %} many{% endif %}
""",
}


def main(out):
    os.makedirs(out, exist_ok=True)
    e = env()
    cases = []
    for tname, src in TEMPLATES.items():
        for cname, msgs in CHATS.items():
            for agp in (False, True):
                for with_tools in ((False, True) if tname in ("qwen_like", "llama31_like") else (False,)):
                    vars = {"messages": msgs, "add_generation_prompt": agp, "bos_token": "<s>", "eos_token": "</s>",
                            "unk_token": "<unk>", "pad_token": "<pad>"}
                    if with_tools:
                        vars["tools"] = TOOLS
                    try:
                        text, error = e.from_string(src).render(**vars), None
                    except jinja2.exceptions.TemplateError as ex:
                        text, error = None, str(ex)
                    cases.append({"template": tname, "chat": cname, "add_generation_prompt": agp, "tools": with_tools,
                                  "text": text, "error": error})
    with open(os.path.join(out, "templates.json"), "w", encoding="utf-8") as f:
        json.dump({"jinja2": jinja2.__version__, "script": "reference-impls/render_templates.py", "templates": TEMPLATES,
                   "chats": CHATS, "tools": TOOLS, "cases": cases}, f, ensure_ascii=False, indent=1)
    print("%d cases, %d raise" % (len(cases), sum(c["error"] is not None for c in cases)))


if __name__ == "__main__":
    main(sys.argv[1])
