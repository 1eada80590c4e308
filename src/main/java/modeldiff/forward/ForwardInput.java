package modeldiff.forward;

import modeldiff.trace.Trace;

import java.util.Arrays;

/**
 * Token ids and the position of the first one. Positions are offset + index, so a short input can probe how an
 * implementation handles position 8190 without a context of 8190 tokens (attention still sees only these tokens).
 * <p>
 * {@code teacher}, when not null, makes the run teacher-forced: each probe is computed from the teacher trace's value
 * of its input ({@link Recorder}). The teacher's tokens and offset are the input's.
 */
public record ForwardInput(int[] tokens, long positionOffset, Trace teacher) {
    public ForwardInput {
        tokens = tokens.clone();
        if (tokens.length == 0) throw new IllegalArgumentException("no tokens");
        if (positionOffset < 0) throw new IllegalArgumentException("negative position offset");
    }

    public ForwardInput(int[] tokens, long positionOffset) {
        this(tokens, positionOffset, null);
    }

    /** The input of {@code teacher} (its tokens and offset), forced by it. */
    public static ForwardInput forcedBy(Trace teacher) {
        return new ForwardInput(teacher.tokens(), teacher.positionOffset(), teacher);
    }

    /** Other tokens (a fix such as input.add_bos changed them), same offset and teacher. */
    public ForwardInput withTokens(int[] newTokens) {
        return new ForwardInput(newTokens, positionOffset, teacher);
    }

    /** The same tokens and offset, free-running. */
    public ForwardInput free() {
        return teacher == null ? this : new ForwardInput(tokens, positionOffset, null);
    }

    public boolean forced() {
        return teacher != null;
    }

    public int length() {
        return tokens.length;
    }

    public long position(int i) {
        return positionOffset + i;
    }

    @Override
    public String toString() {
        return Arrays.toString(tokens) + (positionOffset == 0 ? "" : " @" + positionOffset)
                + (teacher == null ? "" : " forced by " + teacher.producer());
    }
}
