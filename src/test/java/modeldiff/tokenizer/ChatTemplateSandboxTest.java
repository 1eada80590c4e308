package modeldiff.tokenizer;

import modeldiff.model.BadInputException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Hostile chat templates: each ends in one BadInputException line, fast, with nothing of the host leaking out. */
class ChatTemplateSandboxTest {
    static final ChatTemplate.Limits FAST = new ChatTemplate.Limits(1500, 200_000, 32, 100_000, 100_000);

    static Map<String, Object> vars() {
        Map<String, Object> v = new HashMap<>();
        v.put("messages", List.of(Map.of("role", "user", "content", "hi")));
        v.put("add_generation_prompt", true);
        v.put("bos_token", "<s>");
        v.put("eos_token", "</s>");
        return v;
    }

    static String render(String template) {
        return new ChatTemplate(template, FAST).render(vars());
    }

    @ParameterizedTest
    @Timeout(value = 20, unit = TimeUnit.SECONDS)
    @ValueSource(strings = {
            // SSTI: reach Java through a string, a list, a dict, the loop, a filter object (CVE-2020-12668's route)
            "{{ ''.getClass() }}",
            "{{ ''.getClass().forName('java.lang.Runtime').getRuntime().exec('id') }}",
            "{{ ''.class.forName('java.lang.Runtime') }}",
            "{{ messages.getClass().getClassLoader() }}",
            "{{ messages[0].getClass() }}",
            "{{ messages[0].entrySet() }}",
            "{% for m in messages %}{{ loop.getClass() }}{% endfor %}",
            "{{ 'x'.toCharArray() }}",
            "{{ 'x'.getBytes() }}",
            "{{ ____int3rpr3t3r____.getConfig() }}",
            "{{ ____int3rpr3t3r____.context }}",
            // files and other templates
            "{% include '/etc/passwd' %}",
            "{% import '/etc/passwd' as x %}",
            "{% extends '/etc/passwd' %}",
            "{% from '/etc/passwd' import x %}",
            // time: loops, nested loops
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            "{% for i in range(100000) %}{% for j in range(100000) %}{{ '' }}{% endfor %}{% endfor %}",
            // recursion
            "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
            "{% macro f(n) %}x{{ f(n + 1) }}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
            // output size
            "{% for i in range(100000) %}{{ 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' }}{% endfor %}",
            "{% for i in range(100000) %}{{ messages }}{% endfor %}",
            // the template's own refusal
            "{{ raise_exception('Conversation roles must alternate') }}",
    })
    void hostileTemplateGetsOneCleanError(String template) {
        long t0 = System.nanoTime();
        BadInputException e = assertThrows(BadInputException.class, () -> render(template), template);
        double s = (System.nanoTime() - t0) / 1e9;
        String msg = e.getMessage();
        assertTrue(msg.startsWith("chat template"), msg);
        assertFalse(msg.contains("\n"), "one line: " + msg);
        assertFalse(msg.contains("java.lang.Runtime@") || msg.contains("uid="), "nothing of the host leaks: " + msg);
        assertTrue(s < 10, template + " took " + s + " s");
    }

    @Test
    void raiseExceptionCarriesTheTemplatesMessage() {
        BadInputException e = assertThrows(BadInputException.class, () -> render("{{ raise_exception('roles must alternate') }}"));
        assertEquals("chat template raised: roles must alternate", e.getMessage());
    }

    @Test
    void pythonStringAndDictMethodsWork() {
        String t = "{% for m in messages %}{{ m['content'].strip().upper() }}|{{ '  a b  '.split() | join(',') }}|"
                + "{{ 'x</think>y'.split('</think>')[-1] }}|{{ m['role'].startswith('us') }}|{% for k, v in m.items() %}{{ k }}={{ v }};{% endfor %}"
                + "{% endfor %}{{ {'a': 1, 'b': [1, 2]} | tojson }}";
        Map<String, Object> v = vars();
        java.util.LinkedHashMap<String, Object> msg = new java.util.LinkedHashMap<>();
        msg.put("role", "user");
        msg.put("content", "  hi \n");
        v.put("messages", List.of(msg));
        assertEquals("HI|a,b|y|true|role=user;content=  hi \n;{\"a\": 1, \"b\": [1, 2]}", new ChatTemplate(t, FAST).render(v));
    }

    /**
     * Where jinjava still differs from jinja2 (which prints True / False / None and formats with %): recorded here so
     * that a change shows. TemplateConformanceTest keeps to what release templates use, where the two agree.
     */
    @Test
    void knownDifferencesFromJinja2() {
        assertEquals("true false ", render("{{ true }} {{ 1 == 2 }} {{ none }}"));
        assertThrows(BadInputException.class, () -> render("{{ '%s' % 'a' }}"));
    }

    @Test
    void namespaceAndLoopVariablesWork() {
        String t = "{%- set ns = namespace(found=false) %}{%- for m in messages %}{%- if m['role'] == 'user' %}{%- set ns.found = true %}{%- endif %}"
                + "{{ loop.index0 }}{{ loop.last }}{%- endfor %}{{ ns.found }}";
        assertEquals("0truetrue", render(t));
    }
}
