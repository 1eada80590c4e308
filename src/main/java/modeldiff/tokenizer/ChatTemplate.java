package modeldiff.tokenizer;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.interpret.Context;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.filter.Filter;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import com.hubspot.jinjava.objects.date.StrftimeFormatter;
import modeldiff.model.BadInputException;

import java.time.ZonedDateTime;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicReference;

/**
 * A release's chat_template, rendered the way transformers' apply_chat_template renders it (Jinja with
 * trim_blocks and lstrip_blocks; variables messages, add_generation_prompt, the special tokens, raise_exception,
 * strftime_now) -- but as the untrusted code it is. HF uses jinja2's ImmutableSandboxedEnvironment; here:
 * <ul>
 *   <li>values come only through {@link TemplateSandbox}: plain data, loop.*, Python's string/dict methods; no Java
 *       object, method or reflection (jinjava's CVE-2020-12668 was {@code ''.getClass()...});</li>
 *   <li>no include/import/extends/from, and no template loader (no files);</li>
 *   <li>bounded time (checked before every node), macro recursion depth, range() length, list size and output
 *       size; rendering runs on its own thread so a stack overflow ends only that thread.</li>
 * </ul>
 * Whatever goes wrong, the caller gets one {@link BadInputException} line (exit 2).
 */
public final class ChatTemplate {
    /** Bounds on one rendering. */
    public record Limits(long maxMillis, long maxOutputChars, int maxDepth, int rangeLimit, int maxItems) {
        public static final Limits DEFAULT = new Limits(3000, 1_000_000, 32, 100_000, 100_000);
    }

    private final String source;
    private final Limits limits;

    public ChatTemplate(String source) {
        this(source, Limits.DEFAULT);
    }

    public ChatTemplate(String source, Limits limits) {
        if (source == null) throw new BadInputException("no chat template");
        // Jinja (keep_trailing_newline=False, HF's setting) drops one newline at the end of the template source;
        // jinjava's switch of that name trims the output instead, so it stays on and the source is trimmed here.
        String s = source.endsWith("\n") ? source.substring(0, source.length() - 1) : source;
        this.source = stripMarkers(s);
        this.limits = limits;
    }

    private static final java.util.regex.Pattern STRIP_BEFORE = java.util.regex.Pattern.compile("\\s*(\\{[{%#])-");
    private static final java.util.regex.Pattern STRIP_AFTER = java.util.regex.Pattern.compile("-([}%#]\\})\\s*");

    /**
     * Jinja's whitespace control: "{{-", "{%-", "{#-" remove all whitespace before the tag, "-}}", "-%}", "-#}" all
     * after. jinjava does not strip before "{{-", so it is done here, and the tags reach jinjava without markers.
     */
    static String stripMarkers(String s) {
        String t = STRIP_BEFORE.matcher(s).replaceAll("$1");
        return STRIP_AFTER.matcher(t).replaceAll("$1");
    }

    public String source() {
        return source;
    }

    /** apply_chat_template(messages, tokenize=False, add_generation_prompt=...) with the release's special tokens. */
    public String render(List<?> messages, boolean addGenerationPrompt, TokenizerSettings settings) {
        Map<String, Object> vars = new LinkedHashMap<>(settings.templateVariables());
        vars.put("messages", messages);
        vars.put("add_generation_prompt", addGenerationPrompt);
        return render(vars);
    }

    /** Renders with these variables (plain data only: maps, lists, strings, numbers, booleans). */
    public String render(Map<String, Object> vars) {
        long deadline = System.nanoTime() + limits.maxMillis * 1_000_000L;
        AtomicReference<Object> outcome = new AtomicReference<>();
        Thread t = new Thread(null, () -> {
            try {
                outcome.set(engine(deadline).renderForResult(source, vars));
            } catch (Throwable e) {   // TemplateAbort, StackOverflowError, jinjava's own failures
                outcome.set(e);
            }
        }, "chat-template", 64L << 20);
        t.setDaemon(true);
        t.start();
        try {
            t.join(limits.maxMillis + 2000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new BadInputException("chat template: interrupted");
        }
        Object o = outcome.get();
        if (o == null) throw new BadInputException("chat template: still rendering after " + limits.maxMillis + " ms; refused");
        if (o instanceof TemplateAbort a) throw new BadInputException(a.getMessage());
        if (o instanceof StackOverflowError) throw new BadInputException("chat template: recursion too deep");
        if (o instanceof Throwable e) throw new BadInputException("chat template: " + BadInputException.oneLine(String.valueOf(e.getMessage())));
        return output((RenderResult) o);
    }

    private String output(RenderResult r) {
        for (TemplateError e : r.getErrors())
            // Fatal errors, and the limits jinjava reports as warnings (macro recursion): a template that hit a bound
            // is refused, never rendered short.
            if (e.getSeverity() == TemplateError.ErrorType.FATAL || e.getReason() == TemplateError.ErrorReason.EXCEPTION) {
                Throwable cause = e.getException();
                while (cause != null && !(cause instanceof TemplateAbort) && cause.getCause() != null && cause.getCause() != cause) cause = cause.getCause();
                String msg = cause instanceof TemplateAbort ? cause.getMessage()
                        : "chat template: " + BadInputException.oneLine(e.getMessage()) + (e.getLineno() > 0 ? " (line " + e.getLineno() + ")" : "");
                throw new BadInputException(msg);
            }
        String out = r.getOutput();
        if (out.length() > limits.maxOutputChars)
            throw new BadInputException("chat template: output over " + limits.maxOutputChars + " characters; refused");
        return out;
    }

    private Jinjava engine(long deadline) {
        JinjavaConfig config = JinjavaConfig.newBuilder()
                .withTrimBlocks(true).withLstripBlocks(true).withKeepTrailingNewline(true)
                .withFailOnUnknownTokens(false)
                // Jinja's own semantics where jinjava kept HubSpot's: True/False printed as Python does, dict keys
                // evaluated, `for k in dict` over keys, Python's operator precedence, whitespace control as Jinja's.
                // (Not LegacyOverrides.ALL: it also requires spaces inside {{ }}, which Jinja does not.)
                .withLegacyOverrides(com.hubspot.jinjava.LegacyOverrides.newBuilder().withUsePyishObjectMapper(true)
                        .withEvaluateMapKeys(true).withIterateOverMapKeys(true).withUseNaturalOperatorPrecedence(true)
                        .withParseWhitespaceControlStrictly(true).withUseTrimmingForNotesAndExpressions(true)
                        .withKeepNullableLoopValues(true).build())
                .withMaxOutputSize(limits.maxOutputChars * 4).withMaxStringLength(limits.maxOutputChars * 4)
                .withMaxRenderDepth(limits.maxDepth).withMaxMacroRecursionDepth(limits.maxDepth).withEnableRecursiveMacroCalls(true)
                .withRangeLimit(limits.rangeLimit).withMaxListSize(limits.maxItems).withMaxMapSize(limits.maxItems)
                .withDisabled(Map.of(Context.Library.TAG, Set.of("include", "import", "from", "extends")))
                .withProcessors(com.hubspot.jinjava.el.JinjavaProcessors.newBuilder().withNodePreProcessor((node, interpreter) -> {
                    if (System.nanoTime() > deadline)
                        throw new TemplateAbort("chat template: took longer than " + limits.maxMillis + " ms; refused");
                }).build())
                .withElResolver(new TemplateSandbox())   // never withReadOnlyResolver: it replaces the resolver
                .build();
        Jinjava j = new Jinjava(config);
        j.setResourceLocator((name, encoding, interpreter) -> {
            throw new TemplateAbort("chat template: loading another template ('" + name + "') is not allowed");
        });
        j.registerFunction(new ELFunctionDefinition("", "raise_exception", ChatTemplate.class, "raiseException", Object.class));
        j.registerFunction(new ELFunctionDefinition("", "strftime_now", ChatTemplate.class, "strftimeNow", String.class));
        j.registerFilter(new PyJsonFilter());
        j.registerFilter(new PyLengthFilter("length"));
        j.registerFilter(new PyLengthFilter("count"));
        j.registerFilter(new PyTrimFilter());
        j.registerTag(new GenerationTag());
        return j;
    }

    /** raise_exception(message): what templates call on a conversation they refuse. */
    public static Object raiseException(Object message) {
        throw new TemplateAbort("chat template raised: " + BadInputException.oneLine(String.valueOf(message)));
    }

    /** strftime_now(format): the current local time, formatted as Python's strftime does. */
    public static String strftimeNow(String format) {
        return StrftimeFormatter.format(ZonedDateTime.now(), format);
    }

    /** HF's {% generation %} block (marks the assistant's tokens for return_assistant_tokens_mask): renders its body. */
    static final class GenerationTag implements com.hubspot.jinjava.lib.tag.Tag {
        private static final long serialVersionUID = 1L;

        @Override
        public String getName() {
            return "generation";
        }

        @Override
        public String interpret(com.hubspot.jinjava.tree.TagNode tagNode, JinjavaInterpreter interpreter) {
            StringBuilder b = new StringBuilder();
            for (com.hubspot.jinjava.tree.Node child : tagNode.getChildren()) b.append(child.render(interpreter).getValue());
            return b.toString();
        }
    }

    /** Jinja's length: code points of a string (Python's len), items of a list or dict. */
    static final class PyLengthFilter implements Filter {
        private final String name;

        PyLengthFilter(String name) {
            this.name = name;
        }

        @Override
        public String getName() {
            return name;
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            if (var == null) return 0L;
            if (var instanceof String s) return (long) s.codePointCount(0, s.length());
            if (var instanceof java.util.Collection<?> c) return (long) c.size();
            if (var instanceof Map<?, ?> m) return (long) m.size();
            if (var.getClass().isArray()) return (long) java.lang.reflect.Array.getLength(var);
            return (long) var.toString().codePointCount(0, var.toString().length());
        }
    }

    /** Jinja's trim: Python's str.strip() (Unicode whitespace), or strip(chars). */
    static final class PyTrimFilter implements Filter {
        @Override
        public String getName() {
            return "trim";
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            Object[] a = args.length > 0 && args[0] != null ? new Object[]{args[0]} : new Object[0];
            return PyMethods.call(var == null ? "" : var.toString(), "strip", a);
        }
    }

    /** HF's tojson: json.dumps(x, ensure_ascii=False, indent=indent), Python's separators. */
    static final class PyJsonFilter implements Filter {
        @Override
        public String getName() {
            return "tojson";
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            Integer indent = null;
            if (args.length > 0 && args[0] != null && !args[0].isBlank()) indent = Integer.valueOf(args[0].trim());
            return PyJson.dumps(var, indent);
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
            Object indent = kwargs.get("indent");
            if (indent == null && args.length > 0) indent = args[0];
            return PyJson.dumps(var, indent == null ? null : ((Number) (indent instanceof Number ? indent : Long.valueOf(indent.toString()))).intValue());
        }
    }
}
