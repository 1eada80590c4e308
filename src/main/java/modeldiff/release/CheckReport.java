package modeldiff.release;

import modeldiff.hunt.Hunt;
import modeldiff.lint.Finding;
import modeldiff.lint.LintReport;
import modeldiff.report.FixSentences;
import modeldiff.report.HtmlReport;

import java.util.ArrayList;
import java.util.List;

/** The words of a release check's report: a verdict for its title, then every check, every failure, every lint finding. */
final class CheckReport {
    private CheckReport() {
    }

    static long count(List<ReleaseChecks.Outcome> outcomes, ReleaseChecks.Status s) {
        return outcomes.stream().filter(o -> o.status() == s).count();
    }

    /** "modeldiff check mistral: FAILED, 2 of 14 checks failed" or "... passed (12 passed, 2 skipped, 0 accepted)". */
    static HtmlReport.Headline headline(String release, List<ReleaseChecks.Outcome> outcomes) {
        long failed = count(outcomes, ReleaseChecks.Status.FAIL);
        String counts = count(outcomes, ReleaseChecks.Status.PASS) + " passed, " + failed + " failed, "
                + count(outcomes, ReleaseChecks.Status.SKIP) + " skipped, " + count(outcomes, ReleaseChecks.Status.ACCEPTED) + " accepted";
        String text = "modeldiff check " + release + ": " + (failed > 0 ? "FAILED, " + failed + " of " + outcomes.size() + " checks failed"
                : "passed");
        List<String> lines = new ArrayList<>();
        lines.add(counts);
        for (ReleaseChecks.Outcome o : outcomes)
            if (o.status() == ReleaseChecks.Status.FAIL) lines.add("FAIL " + o.check().id() + ": " + o.message());
        return new HtmlReport.Headline(text, lines, failed > 0);
    }

    static List<HtmlReport.Section> sections(List<ReleaseChecks.Outcome> outcomes, LintReport lint) {
        List<HtmlReport.Section> out = new ArrayList<>();
        List<List<String>> rows = new ArrayList<>();
        for (ReleaseChecks.Outcome o : outcomes)
            rows.add(List.of(o.check().id(), o.status().name(), o.check().description(), o.message() == null ? "" : o.message()));
        out.add(new HtmlReport.Section("Checks", List.of("Every check, in the order it ran. SKIP: not available on this machine by design (no GPU, no native library); "
                + "ACCEPTED: failed, but the release's baseline accepts it with the reason shown."),
                List.of("check", "status", "what it checks", "why"), rows));
        for (ReleaseChecks.Outcome o : outcomes)
            if (o.failure() != null) out.add(failure(o));
        out.add(lintSection(lint));
        return out;
    }

    private static HtmlReport.Section failure(ReleaseChecks.Outcome o) {
        ReleaseChecks.Failure f = o.failure();
        List<String> p = new ArrayList<>();
        p.add(f.getMessage());
        p.add("First divergence: " + (f.firstDivergence() == null ? "none located (see the message above)" : f.firstDivergence()) + ".");
        Hunt.Result h = f.hunt();
        p.add(h == null ? "Explanation: no hunt ran for this check." : "Explanation: " + FixSentences.conclusion(h, "this trace") + ". Hunt: " + h.sentence());
        return HtmlReport.Section.text(o.status().name() + " " + o.check().id(), p.toArray(String[]::new));
    }

    private static HtmlReport.Section lintSection(LintReport lint) {
        if (lint == null) return HtmlReport.Section.text("Lint findings", "Lint did not run.");
        List<List<String>> rows = new ArrayList<>();
        for (Finding f : lint.findings()) rows.add(List.of(f.severity().name(), f.rule(), f.message()));
        if (rows.isEmpty()) return HtmlReport.Section.text("Lint findings", "No findings.");
        return new HtmlReport.Section("Lint findings", List.of(rows.size() + " finding(s); an ERROR fails the lint check."),
                List.of("severity", "rule", "message"), rows);
    }
}
