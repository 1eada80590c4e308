package modeldiff.report;

import modeldiff.model.ModelConfig;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What a report says about how it was made: the exact command, tool versions and the model's config (null when the
 * comparison ran on traces alone).
 */
public record RunInfo(List<String> command, Map<String, String> versions, ModelConfig model, String modelLabel) {
    public RunInfo {
        command = List.copyOf(command);
        versions = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(versions));
    }

    public RunInfo(List<String> command, Map<String, String> versions, ModelConfig model) {
        this(command, versions, model, null);
    }

    /**
     * The same run with the model's config named by {@code label} instead of its path: for a model extracted to a
     * temporary folder (the demo), whose path would not exist once the report is read.
     */
    public RunInfo withModelLabel(String label) {
        return new RunInfo(command, versions, model, label);
    }

    /** modeldiff's version plus the runtime's, the minimum needed to reproduce a report. */
    public static Map<String, String> versions(String modeldiffVersion) {
        Map<String, String> v = new LinkedHashMap<>();
        v.put("modeldiff", modeldiffVersion);
        v.put("java", System.getProperty("java.version") + " (" + System.getProperty("java.vendor") + ")");
        v.put("os", System.getProperty("os.name") + " " + System.getProperty("os.arch"));
        return v;
    }

    /** The command as one shell-like line; arguments with spaces or quotes are single-quoted. */
    public String commandLine() {
        StringBuilder sb = new StringBuilder();
        for (String a : command) {
            if (sb.length() > 0) sb.append(' ');
            if (!a.isEmpty() && a.chars().allMatch(c -> Character.isLetterOrDigit(c) || "-_./:=,@+%".indexOf(c) >= 0)) sb.append(a);
            else sb.append('\'').append(a.replace("'", "'\\''")).append('\'');
        }
        return sb.toString();
    }
}
