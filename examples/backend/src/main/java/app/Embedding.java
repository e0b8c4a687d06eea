package app;

import java.nio.charset.StandardCharsets;
import java.text.Normalizer;
import java.util.Locale;

/**
 * Deterministic 384-dimension text embedding without a model: an L2-normalised,
 * hashed bag of character trigrams (plus whole words, weighted higher). Texts
 * that share many trigrams end up close in cosine distance.
 */
final class Embedding {
    static final int DIM = 384;

    private Embedding() {}

    static float[] embed(String text) {
        double[] v = new double[DIM];
        String norm = Normalizer.normalize(text, Normalizer.Form.NFKC)
                .toLowerCase(Locale.ROOT)
                .replaceAll("[^\\p{L}\\p{N}]+", " ")
                .trim();
        if (norm.isEmpty()) norm = text.toLowerCase(Locale.ROOT).trim();
        for (String word : norm.split(" ")) {
            if (word.isEmpty()) continue;
            String padded = "  " + word + " ";
            for (int i = 0; i + 3 <= padded.length(); i++) {
                add(v, "3:" + padded.substring(i, i + 3), 1.0);
            }
            add(v, "w:" + word, 2.0);
        }
        double sum = 0;
        for (double x : v) sum += x * x;
        float[] out = new float[DIM];
        if (sum == 0) {
            out[0] = 1f; // never store a zero vector (cosine distance would be undefined)
            return out;
        }
        double n = Math.sqrt(sum);
        for (int i = 0; i < DIM; i++) out[i] = (float) (v[i] / n);
        return out;
    }

    /** FNV-1a (64 bit) over UTF-8 bytes: stable across JVMs, unlike String.hashCode seeds. */
    private static void add(double[] v, String feature, double weight) {
        long h = 0xcbf29ce484222325L;
        for (byte b : feature.getBytes(StandardCharsets.UTF_8)) {
            h ^= (b & 0xff);
            h *= 0x100000001b3L;
        }
        int idx = (int) Long.remainderUnsigned(h, DIM);
        v[idx] += weight;
    }

    /** pgvector text literal, e.g. "[0.1,0.2,...]", bound with ?::vector. */
    static String literal(float[] v) {
        StringBuilder sb = new StringBuilder(DIM * 10);
        sb.append('[');
        for (int i = 0; i < v.length; i++) {
            if (i > 0) sb.append(',');
            sb.append(v[i]);
        }
        return sb.append(']').toString();
    }
}
