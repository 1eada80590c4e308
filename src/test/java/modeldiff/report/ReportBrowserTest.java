package modeldiff.report;

import modeldiff.cli.Main;
import modeldiff.model.DType;
import modeldiff.trace.Trace;
import modeldiff.trace.TraceFiles;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.openqa.selenium.By;
import org.openqa.selenium.JavascriptExecutor;
import org.openqa.selenium.WebDriver;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * A report built by `modeldiff compare --report` from a hostile model folder and trace, opened in headless Chromium:
 * no script may run (neither through a tag in the page nor an event handler), and every hostile string must show as
 * literal text. Needs Debian's chromium and chromium-driver (.ci/run installs both); without them the test is skipped
 * with the reason, unless MODELDIFF_REQUIRE_BROWSER=1 (set by .ci/run), which turns the skip into a failure.
 */
class ReportBrowserTest {
    static final Path CHROMIUM = Path.of(System.getProperty("modeldiff.chromium", "/usr/bin/chromium"));
    static final Path DRIVER = Path.of(System.getProperty("modeldiff.chromedriver", "/usr/bin/chromedriver"));
    static final String SCRIPT = "<script>window.__pwned=1</script>";
    static final String IMG = "\"><img src=x onerror=window.__pwned=2>";
    static final String SVG = "<svg/onload=window.__pwned=3>";

    @TempDir
    Path tmp;

    @Test
    void hostileStringsShowLiterallyAndNoScriptRuns() throws Exception {
        requireBrowser();
        // The folder name carries one payload (no '/' in a file name), config.json and the trace the others.
        Path model = TinyModel.write(tmp.resolve("model" + IMG.replace("/", "")), SCRIPT + IMG + SVG);
        Path ref = tmp.resolve("ref.safetensors");
        assertEquals(0, run("trace", "--model", model.toString(), "--out", ref.toString(), "--tokens", "1,4,9"));
        Trace clean = TraceFiles.read(ref);
        Trace hostile = new Trace(SCRIPT + " producer", "float64", IMG + " device", clean.tokens(), clean.positionOffset());
        clean.probes().values().forEach(p -> hostile.put(p.name(), p.cols(), p.data()));
        hostile.putExtra("planted", SVG);
        Path cand = tmp.resolve("cand.safetensors");
        TraceFiles.write(hostile, cand, DType.F64);
        Path html = tmp.resolve("out/report.html");
        assertEquals(0, run("compare", "--model", model.toString(), "--reference", "reference", "--candidate", cand.toString(),
                "--report", html.toString(), "--noise-floor", "table"));
        assertTrue(Files.readString(html).contains("Content-Security-Policy"));

        WebDriver driver = start();
        try {
            driver.get(html.toUri().toString());
            JavascriptExecutor js = (JavascriptExecutor) driver;
            // The page's own scripts would set window.__pwned; WebDriver's probe runs outside the page's CSP.
            assertEquals("undefined", js.executeScript("return typeof window.__pwned"), "a script from the model files ran");
            assertEquals(0, driver.findElements(By.tagName("script")).size(), "no script element in the page");
            assertEquals(0, driver.findElements(By.cssSelector("img[src='x']")).size(), "no injected img element");
            assertEquals(0, driver.findElements(By.cssSelector("body svg")).size(), "no injected svg element");
            String text = driver.findElement(By.tagName("body")).getText();
            assertTrue(text.contains(SCRIPT), "the script tag shows as text");
            assertTrue(text.contains(IMG.substring(2)), "the img payload shows as text");
            assertTrue(text.contains(SVG), "the svg payload shows as text");
            assertTrue(text.contains("no excess error") || text.contains("excess error"), "the report rendered");
        } finally {
            driver.quit();
        }
    }

    @Test
    void contentSecurityPolicyBlocksScriptsEvenIfOneGotIn() throws Exception {
        requireBrowser();
        // Belt and braces: a page with the report's CSP and a raw inline script and handler. Neither may run.
        String head = HtmlReport.render(ReportJsonTest.awkward(), ReportJsonTest.run());
        String csp = head.substring(head.indexOf("<meta http-equiv=\"Content-Security-Policy\""));
        csp = csp.substring(0, csp.indexOf('>') + 1);
        Path page = tmp.resolve("csp.html");
        Files.writeString(page, "<!doctype html><html><head>" + csp + "</head><body><p>x</p>" + SCRIPT
                + "<img src=x onerror=\"window.__pwned=2\"></body></html>");
        WebDriver driver = start();
        try {
            driver.get(page.toUri().toString());
            assertEquals("undefined", ((JavascriptExecutor) driver).executeScript("return typeof window.__pwned"));
        } finally {
            driver.quit();
        }
    }

    @Test
    void harnessSeesAScriptThatRuns() throws Exception {
        requireBrowser();
        // Control: without the CSP the same payloads do run, so "undefined" above means blocked, not unobserved.
        Path page = tmp.resolve("open.html");
        Files.writeString(page, "<!doctype html><html><body><p>x</p>" + SCRIPT + "</body></html>");
        WebDriver driver = start();
        try {
            driver.get(page.toUri().toString());
            assertEquals(1L, ((JavascriptExecutor) driver).executeScript("return window.__pwned"));
        } finally {
            driver.quit();
        }
    }

    private WebDriver start() {
        ChromeOptions o = new ChromeOptions();
        o.setBinary(CHROMIUM.toFile());
        o.addArguments("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--user-data-dir=" + tmp.resolve("profile-" + System.nanoTime()));
        ChromeDriverService svc = new ChromeDriverService.Builder().usingDriverExecutable(DRIVER.toFile())
                .usingAnyFreePort().withLogOutput(java.io.OutputStream.nullOutputStream()).build();
        ChromeDriver d = new ChromeDriver(svc, o);
        d.manage().timeouts().pageLoadTimeout(Duration.ofSeconds(60));
        return d;
    }

    private static void requireBrowser() {
        boolean present = Files.isExecutable(CHROMIUM) && Files.isExecutable(DRIVER);
        String why = "headless browser test skipped: " + (Files.isExecutable(CHROMIUM) ? "" : CHROMIUM + " missing ")
                + (Files.isExecutable(DRIVER) ? "" : DRIVER + " missing ") + "(apt-get install chromium chromium-driver)";
        if (!present && "1".equals(System.getenv("MODELDIFF_REQUIRE_BROWSER"))) fail(why + "; MODELDIFF_REQUIRE_BROWSER=1 requires it");
        if (!present) System.out.println("[ReportBrowserTest] " + why);
        Assumptions.assumeTrue(present, why);
    }

    private static int run(String... args) {
        PrintStream so = System.out, se = System.err;
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(o, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(o, true, StandardCharsets.UTF_8));
            int rc = Main.execute(args);
            if (rc != 0) se.println(o.toString(StandardCharsets.UTF_8));
            return rc;
        } finally {
            System.setOut(so);
            System.setErr(se);
        }
    }

}
