/*
 * "english" analyzer (Lucene's EnglishAnalyzer: standard tokenizer, possessive, lowercase, stop,
 * porter stem), with Elasticsearch's "stopwords"/"stopwords_path" and "stem_exclusion" options.
 */
package org.portal.analysis;

import org.apache.lucene.analysis.CharArraySet;
import org.apache.lucene.analysis.en.EnglishAnalyzer;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.index.IndexSettings;
import org.elasticsearch.index.analysis.AbstractIndexAnalyzerProvider;
import org.elasticsearch.index.analysis.Analysis;

final class EnglishAnalyzerProvider extends AbstractIndexAnalyzerProvider<EnglishAnalyzer> {

    private final EnglishAnalyzer analyzer;

    EnglishAnalyzerProvider(IndexSettings is, Environment env, String name, Settings settings) {
        super(name);
        CharArraySet stopwords = Analysis.parseStopWords(env, settings, EnglishAnalyzer.getDefaultStopSet());
        analyzer = new EnglishAnalyzer(stopwords, Analysis.parseStemExclusion(settings, CharArraySet.EMPTY_SET));
    }

    @Override
    public EnglishAnalyzer get() {
        return analyzer;
    }
}
