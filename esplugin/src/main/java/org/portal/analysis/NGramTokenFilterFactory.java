/*
 * "edge_ngram" and "ngram" token filters (min_gram, max_gram, preserve_original; edge_ngram also
 * accepts side=front|back). Defaults and the index.max_ngram_diff check mirror Elasticsearch.
 */
package org.portal.analysis;

import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.ngram.EdgeNGramTokenFilter;
import org.apache.lucene.analysis.ngram.NGramTokenFilter;
import org.apache.lucene.analysis.reverse.ReverseStringFilter;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.index.IndexSettings;
import org.elasticsearch.index.analysis.AbstractTokenFilterFactory;
import org.elasticsearch.index.analysis.TokenFilterFactory;

final class NGramTokenFilterFactory extends AbstractTokenFilterFactory {

    private final boolean edge;
    private final int minGram;
    private final int maxGram;
    private final boolean preserveOriginal;
    private final boolean back;

    NGramTokenFilterFactory(IndexSettings indexSettings, String name, Settings settings, boolean edge) {
        super(name);
        this.edge = edge;
        this.minGram = settings.getAsInt("min_gram", 1);
        this.maxGram = settings.getAsInt("max_gram", 2);
        this.preserveOriginal = settings.getAsBoolean("preserve_original", false);
        if (minGram < 1 || maxGram < minGram) {
            throw new IllegalArgumentException("[" + name + "] requires 1 <= min_gram <= max_gram, got min_gram="
                + minGram + " max_gram=" + maxGram);
        }
        String side = settings.get("side", "front");
        if (edge && side.equals("front") == false && side.equals("back") == false) {
            throw new IllegalArgumentException("invalid side: [" + side + "], expected [front] or [back]");
        }
        this.back = edge && side.equals("back");
        if (edge == false) {
            Tokenizers.checkNgramDiff(indexSettings, minGram, maxGram, "NGram Token Filter");
        }
    }

    @Override
    public TokenStream create(TokenStream in) {
        if (edge == false) {
            return new NGramTokenFilter(in, minGram, maxGram, preserveOriginal);
        }
        if (back) {
            in = new ReverseStringFilter(in);
            return new ReverseStringFilter(new EdgeNGramTokenFilter(in, minGram, maxGram, preserveOriginal));
        }
        return new EdgeNGramTokenFilter(in, minGram, maxGram, preserveOriginal);
    }

    @Override
    public TokenFilterFactory getSynonymFilter() {
        throw new IllegalArgumentException("Token filter [" + name() + "] cannot be used to parse synonyms");
    }
}
