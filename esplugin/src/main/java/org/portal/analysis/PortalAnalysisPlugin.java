/*
 * Entry point of the "portal-analysis" plugin: registers a subset of the analysis components of
 * Elasticsearch's analysis-common module (which the integ-test distribution lacks) under the stock
 * names, built directly on the Lucene classes that ship in lib/lucene-analysis-common-*.jar.
 */
package org.portal.analysis;

import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.analysis.core.FlattenGraphFilter;
import org.apache.lucene.analysis.core.UpperCaseFilter;
import org.apache.lucene.analysis.en.EnglishMinimalStemFilter;
import org.apache.lucene.analysis.en.KStemFilter;
import org.apache.lucene.analysis.en.PorterStemFilter;
import org.apache.lucene.analysis.miscellaneous.ASCIIFoldingFilter;
import org.apache.lucene.analysis.miscellaneous.LengthFilter;
import org.apache.lucene.analysis.miscellaneous.TrimFilter;
import org.apache.lucene.analysis.miscellaneous.TruncateTokenFilter;
import org.apache.lucene.analysis.reverse.ReverseStringFilter;
import org.elasticsearch.index.analysis.AnalyzerProvider;
import org.elasticsearch.index.analysis.CharFilterFactory;
import org.elasticsearch.index.analysis.TokenFilterFactory;
import org.elasticsearch.index.analysis.TokenizerFactory;
import org.elasticsearch.indices.analysis.AnalysisModule.AnalysisProvider;
import org.elasticsearch.plugins.AnalysisPlugin;
import org.elasticsearch.plugins.Plugin;

import java.util.Map;
import java.util.TreeMap;

import static org.elasticsearch.plugins.AnalysisPlugin.requiresAnalysisSettings;

public class PortalAnalysisPlugin extends Plugin implements AnalysisPlugin {

    @Override
    public Map<String, AnalysisProvider<TokenFilterFactory>> getTokenFilters() {
        Map<String, AnalysisProvider<TokenFilterFactory>> m = new TreeMap<>();
        m.put("word_delimiter_graph", (is, env, name, s) -> new WordDelimiterTokenFilterFactory(env, name, s, true));
        m.put("word_delimiter", (is, env, name, s) -> new WordDelimiterTokenFilterFactory(env, name, s, false));
        m.put("edge_ngram", (is, env, name, s) -> new NGramTokenFilterFactory(is, name, s, true));
        m.put("ngram", (is, env, name, s) -> new NGramTokenFilterFactory(is, name, s, false));
        m.put("stemmer", (is, env, name, s) -> new StemmerTokenFilterFactory(name, s));
        m.put("porter_stem", (is, env, name, s) -> new SimpleTokenFilterFactory(name, PorterStemFilter::new));
        m.put("kstem", (is, env, name, s) -> new SimpleTokenFilterFactory(name, KStemFilter::new));
        m.put("asciifolding", (is, env, name, s) -> {
            boolean preserve = s.getAsBoolean("preserve_original", false);
            return new SimpleTokenFilterFactory.Normalizing(name, ts -> new ASCIIFoldingFilter(ts, preserve));
        });
        m.put("synonym_graph", requiresAnalysisSettings((is, env, name, s) -> new SynonymTokenFilterFactory(env, name, s, true)));
        m.put("synonym", requiresAnalysisSettings((is, env, name, s) -> new SynonymTokenFilterFactory(env, name, s, false)));
        m.put("flatten_graph", (is, env, name, s) -> new SimpleTokenFilterFactory(name, FlattenGraphFilter::new));
        m.put("unique", (is, env, name, s) -> {
            boolean samePos = s.getAsBoolean("only_on_same_position", false);
            return new SimpleTokenFilterFactory(name, ts -> new UniqueTokenFilter(ts, samePos));
        });
        m.put("trim", (is, env, name, s) -> new SimpleTokenFilterFactory.Normalizing(name, TrimFilter::new));
        m.put("uppercase", (is, env, name, s) -> new SimpleTokenFilterFactory.Normalizing(name, UpperCaseFilter::new));
        m.put("reverse", (is, env, name, s) -> new SimpleTokenFilterFactory(name, ReverseStringFilter::new));
        m.put("length", (is, env, name, s) -> {
            int min = s.getAsInt("min", 0);
            int max = s.getAsInt("max", Integer.MAX_VALUE);
            return new SimpleTokenFilterFactory(name, ts -> new LengthFilter(ts, min, max));
        });
        m.put("truncate", (is, env, name, s) -> {
            int length = s.getAsInt("length", 10);
            if (length <= 0) {
                throw new IllegalArgumentException("length parameter must be provided");
            }
            return new SimpleTokenFilterFactory(name, ts -> new TruncateTokenFilter(ts, length));
        });
        m.put("english_minimal_stem", (is, env, name, s) -> new SimpleTokenFilterFactory(name, EnglishMinimalStemFilter::new));
        return m;
    }

    @Override
    public Map<String, AnalysisProvider<TokenizerFactory>> getTokenizers() {
        Map<String, AnalysisProvider<TokenizerFactory>> m = new TreeMap<>();
        m.put("keyword", Tokenizers::keyword);
        m.put("whitespace", Tokenizers::whitespace);
        m.put("pattern", Tokenizers::pattern);
        m.put("char_group", Tokenizers::charGroup);
        m.put("letter", Tokenizers::letter);
        m.put("edge_ngram", (is, env, name, s) -> Tokenizers.ngram(is, name, s, true));
        m.put("ngram", (is, env, name, s) -> Tokenizers.ngram(is, name, s, false));
        return m;
    }

    @Override
    public Map<String, AnalysisProvider<CharFilterFactory>> getCharFilters() {
        Map<String, AnalysisProvider<CharFilterFactory>> m = new TreeMap<>();
        m.put("mapping", requiresAnalysisSettings(CharFilters.Mapping::new));
        m.put("pattern_replace", requiresAnalysisSettings(CharFilters.PatternReplace::new));
        m.put("html_strip", CharFilters.HtmlStrip::new);
        return m;
    }

    @Override
    public Map<String, AnalysisProvider<AnalyzerProvider<? extends Analyzer>>> getAnalyzers() {
        Map<String, AnalysisProvider<AnalyzerProvider<? extends Analyzer>>> m = new TreeMap<>();
        m.put("english", EnglishAnalyzerProvider::new);
        return m;
    }
}
