package modeldiff.notebook;

import com.github.mustachejava.DefaultMustacheFactory;
import com.github.mustachejava.Mustache;
import jdk.jshell.JShell;
import jdk.jshell.Snippet;
import jdk.jshell.SnippetEvent;
import jdk.jshell.SourceCodeAnalysis;
import modeldiff.model.BadInputException;
import modeldiff.util.AtomicFiles;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Runs a walkthrough written as a JShell script and renders it, output and charts included, to one HTML page.
 * Lines starting with "//md" are prose (one paragraph per block); everything else is Java, evaluated snippet by
 * snippet in this JVM (so the modeldiff classes are there). Any snippet that fails to compile or throws stops the
 * run: a notebook that rots fails CI.
 */
public final class NotebookRunner {
    public record Cell(String prose, String code, String output, List<String> images) {
    }

    /** {@code tempDirs}: the folders the notebook made with Nb.tempDir, deleted when it ended. */
    public record Result(String title, List<Cell> cells, List<Path> tempDirs) {
    }

    private NotebookRunner() {
    }

    public static Result run(Path script) throws IOException {
        List<String> lines = Files.readAllLines(script, StandardCharsets.UTF_8);
        String title = script.getFileName().toString();
        List<String[]> blocks = new ArrayList<>(); // [prose, code]
        StringBuilder prose = new StringBuilder(), code = new StringBuilder();
        for (String line : lines) {
            if (line.startsWith("//md")) {
                if (code.length() > 0) {
                    blocks.add(new String[]{prose.toString().trim(), code.toString()});
                    prose.setLength(0);
                    code.setLength(0);
                }
                String text = line.substring(4).trim();
                if (text.startsWith("# ")) title = text.substring(2);
                else prose.append(text.isEmpty() ? "\n\n" : text + " ");
            } else {
                code.append(line).append('\n');
            }
        }
        if (prose.length() > 0 || code.length() > 0) blocks.add(new String[]{prose.toString().trim(), code.toString()});

        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        PrintStream oldOut = System.out;
        PrintStream capture = new PrintStream(captured, true, StandardCharsets.UTF_8);
        List<Cell> cells = new ArrayList<>();
        List<Path> temp = new ArrayList<>();
        try (JShell shell = JShell.builder().executionEngine("local").out(capture).err(capture).build()) {
            for (String entry : System.getProperty("java.class.path").split(File.pathSeparator)) shell.addToClasspath(entry);
            System.setOut(capture);
            for (String[] b : blocks) {
                captured.reset();
                String src = b[1];
                SourceCodeAnalysis sca = shell.sourceCodeAnalysis();
                while (!src.isBlank()) {
                    SourceCodeAnalysis.CompletionInfo ci = sca.analyzeCompletion(src);
                    String snippet = ci.source() == null ? src : ci.source();
                    for (SnippetEvent e : shell.eval(snippet)) {
                        if (e.status() == Snippet.Status.REJECTED) {
                            String diag = shell.diagnostics(e.snippet()).map(d -> d.getMessage(null)).reduce((x, y) -> x + "; " + y).orElse("rejected");
                            throw new BadInputException(script + ": snippet does not compile: " + snippet.strip() + " — " + diag);
                        }
                        if (e.exception() != null)
                            throw new BadInputException(script + ": snippet threw " + e.exception() + ": " + snippet.strip());
                    }
                    src = ci.remaining();
                    if (ci.source() == null) break;
                }
                capture.flush();
                List<String> images = new ArrayList<>();
                for (byte[] png : Nb.drain()) images.add("data:image/png;base64," + Base64.getEncoder().encodeToString(png));
                cells.add(new Cell(b[0], b[1].strip(), captured.toString(StandardCharsets.UTF_8).strip(), images));
            }
        } finally {
            System.setOut(oldOut);
            temp.addAll(Nb.deleteTempDirs());
        }
        return new Result(title, cells, temp);
    }

    public static void render(Result r, Path html) {
        Mustache m = new DefaultMustacheFactory().compile("modeldiff/report/notebook.mustache");
        Map<String, Object> v = new LinkedHashMap<>();
        v.put("title", r.title());
        List<Map<String, Object>> cells = new ArrayList<>();
        for (Cell c : r.cells()) {
            Map<String, Object> o = new LinkedHashMap<>();
            List<String> paragraphs = new ArrayList<>();
            for (String p : c.prose().split("\n\n")) if (!p.isBlank()) paragraphs.add(p.strip());
            o.put("paragraphs", paragraphs);
            o.put("code", c.code());
            o.put("hasCode", !c.code().isBlank());
            o.put("output", c.output());
            o.put("hasOutput", !c.output().isBlank());
            o.put("images", c.images());
            cells.add(o);
        }
        v.put("cells", cells);
        java.io.StringWriter w = new java.io.StringWriter();
        m.execute(w, v);
        AtomicFiles.writeString(html, w.toString());
    }
}
