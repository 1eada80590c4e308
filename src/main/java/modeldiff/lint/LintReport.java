package modeldiff.lint;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import modeldiff.util.AtomicFiles;

import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Collectors;

/** The findings of one lint run, sorted errors first, and their text / JSON forms. */
public record LintReport(Path model, List<Finding> findings, double seconds) {
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    public LintReport {
        findings = List.copyOf(findings);
    }

    public long count(Severity s) {
        return findings.stream().filter(f -> f.severity() == s).count();
    }

    public boolean hasErrors() {
        return count(Severity.ERROR) > 0;
    }

    public List<Finding> byRule(String rule) {
        return findings.stream().filter(f -> f.rule().equals(rule)).toList();
    }

    /** {"findings": [{"rule", "severity", "message", "evidence", "fix"}]}. */
    public String toJson() {
        ObjectNode root = JSON.createObjectNode();
        ArrayNode arr = root.putArray("findings");
        for (Finding f : findings) {
            ObjectNode o = arr.addObject();
            o.put("rule", f.rule());
            o.put("severity", f.severity().id());
            o.put("message", f.message());
            o.set("evidence", JSON.valueToTree(f.evidence()));
            if (f.fix() == null) o.putNull("fix");
            else o.put("fix", f.fix());
        }
        try {
            return JSON.writeValueAsString(root) + "\n";
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    public void writeJson(Path file) {
        AtomicFiles.writeString(file, toJson());
    }

    /** A table: severity, rule, message; evidence and fix indented beneath each row; a summary line last. */
    public String toText() {
        StringBuilder sb = new StringBuilder();
        int ruleWidth = findings.stream().mapToInt(f -> f.rule().length()).max().orElse(4);
        String fmt = "%-8s %-" + ruleWidth + "s %s%n";
        String indent = " ".repeat(9 + ruleWidth + 1);
        if (!findings.isEmpty()) sb.append(String.format(Locale.ROOT, fmt, "SEVERITY", "RULE", "MESSAGE"));
        for (Finding f : findings) {
            sb.append(String.format(Locale.ROOT, fmt, f.severity().id(), f.rule(), f.message()));
            if (!f.evidence().isEmpty()) sb.append(indent).append("evidence: ").append(evidence(f.evidence())).append('\n');
            if (f.fix() != null) sb.append(indent).append("fix: ").append(f.fix()).append('\n');
        }
        sb.append(String.format(Locale.ROOT, "%s: %d error(s), %d warning(s), %d info in %.2f s%n", model,
                count(Severity.ERROR), count(Severity.WARNING), count(Severity.INFO), seconds));
        return sb.toString();
    }

    private static String evidence(Map<String, Object> ev) {
        return ev.entrySet().stream().map(e -> e.getKey() + "=" + value(e.getValue())).collect(Collectors.joining(", "));
    }

    private static String value(Object v) {
        if (v instanceof Double d) return d == Math.rint(d) && Math.abs(d) < 1e15 ? Long.toString(d.longValue()) : String.format(Locale.ROOT, "%.6g", d);
        return String.valueOf(v);
    }
}
