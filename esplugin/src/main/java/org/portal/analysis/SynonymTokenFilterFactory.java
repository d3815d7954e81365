/*
 * "synonym_graph" and "synonym" token filters: rules from an inline "synonyms" list or a
 * "synonyms_path" file (relative to the config dir), in solr (default) or wordnet "format";
 * "expand", "lenient" and "updateable" behave as in Elasticsearch ("synonyms_set" is unsupported).
 * The rules are analysed with the tokenizer and filters that precede this filter in the analyzer.
 */
package org.portal.analysis;

import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.synonym.SolrSynonymParser;
import org.apache.lucene.analysis.synonym.SynonymFilter;
import org.apache.lucene.analysis.synonym.SynonymGraphFilter;
import org.apache.lucene.analysis.synonym.SynonymMap;
import org.apache.lucene.analysis.synonym.WordnetSynonymParser;
import org.apache.lucene.util.CharsRef;
import org.apache.lucene.util.CharsRefBuilder;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.index.IndexService.IndexCreationContext;
import org.elasticsearch.index.analysis.AbstractTokenFilterFactory;
import org.elasticsearch.index.analysis.Analysis;
import org.elasticsearch.index.analysis.AnalysisMode;
import org.elasticsearch.index.analysis.CharFilterFactory;
import org.elasticsearch.index.analysis.CustomAnalyzer;
import org.elasticsearch.index.analysis.TokenFilterFactory;
import org.elasticsearch.index.analysis.TokenizerFactory;

import java.io.IOException;
import java.io.StringReader;
import java.util.List;
import java.util.function.Function;

final class SynonymTokenFilterFactory extends AbstractTokenFilterFactory {

    private final boolean graph;
    private final List<String> rules;
    private final boolean wordnet;
    private final boolean expand;
    private final boolean lenient;
    private final AnalysisMode analysisMode;

    SynonymTokenFilterFactory(Environment env, String name, Settings settings, boolean graph) {
        super(name);
        this.graph = graph;
        if (settings.hasValue("synonyms_set")) {
            throw new IllegalArgumentException("[synonyms_set] is not supported by the portal-analysis plugin");
        }
        this.rules = Analysis.getWordList(env, settings, "synonyms");
        if (rules == null) {
            throw new IllegalArgumentException("synonym requires either `synonyms` or `synonyms_path` to be configured");
        }
        String format = settings.get("format", "");
        this.wordnet = "wordnet".equalsIgnoreCase(format);
        this.expand = settings.getAsBoolean("expand", true);
        boolean updateable = settings.getAsBoolean("updateable", false);
        this.lenient = settings.getAsBoolean("lenient", updateable);
        this.analysisMode = updateable ? AnalysisMode.SEARCH_TIME : AnalysisMode.ALL;
    }

    @Override
    public AnalysisMode getAnalysisMode() {
        return analysisMode;
    }

    @Override
    public TokenStream create(TokenStream tokenStream) {
        throw new IllegalStateException("Call getChainAwareTokenFilterFactory to specialize this factory for an analysis chain first");
    }

    @Override
    public TokenFilterFactory getChainAwareTokenFilterFactory(
        IndexCreationContext context,
        TokenizerFactory tokenizer,
        List<CharFilterFactory> charFilters,
        List<TokenFilterFactory> previousTokenFilters,
        Function<String, TokenFilterFactory> allFilters
    ) {
        Analyzer analyzer = new CustomAnalyzer(
            tokenizer,
            charFilters.toArray(new CharFilterFactory[0]),
            previousTokenFilters.stream().map(TokenFilterFactory::getSynonymFilter).toArray(TokenFilterFactory[]::new)
        );
        SynonymMap synonyms = buildSynonyms(analyzer);
        String name = name();
        boolean graphFilter = graph;
        AnalysisMode mode = analysisMode;
        return new TokenFilterFactory() {
            @Override
            public String name() {
                return name;
            }

            @Override
            @SuppressWarnings("deprecation")
            public TokenStream create(TokenStream in) {
                if (synonyms.fst == null) {
                    return in;
                }
                return graphFilter ? new SynonymGraphFilter(in, synonyms, false) : new SynonymFilter(in, synonyms, false);
            }

            @Override
            public TokenFilterFactory getSynonymFilter() {
                // synonyms must not be applied to the rules of a later synonym filter
                return IDENTITY_FILTER;
            }

            @Override
            public AnalysisMode getAnalysisMode() {
                return mode;
            }
        };
    }

    private SynonymMap buildSynonyms(Analyzer analyzer) {
        StringBuilder text = new StringBuilder();
        for (String rule : rules) {
            text.append(rule).append('\n');
        }
        try {
            SynonymMap.Parser parser = wordnet ? new LenientWordnetParser(analyzer) : new LenientSolrParser(analyzer);
            parser.parse(new StringReader(text.toString()));
            return parser.build();
        } catch (Exception e) {
            throw new IllegalArgumentException("failed to build synonyms for [" + name() + "]: " + e.getMessage(), e);
        }
    }

    /* With lenient=true, rules whose terms fail to analyse (e.g. a stop word) are skipped. */

    private final class LenientSolrParser extends SolrSynonymParser {
        LenientSolrParser(Analyzer analyzer) {
            super(true, expand, analyzer);
        }

        @Override
        public CharsRef analyze(String text, CharsRefBuilder reuse) throws IOException {
            try {
                return super.analyze(text, reuse);
            } catch (IllegalArgumentException e) {
                if (lenient) {
                    return new CharsRef("");
                }
                throw e;
            }
        }

        @Override
        public void add(CharsRef input, CharsRef output, boolean includeOrig) {
            if (lenient == false || (input.length > 0 && output.length > 0)) {
                super.add(input, output, includeOrig);
            }
        }
    }

    private final class LenientWordnetParser extends WordnetSynonymParser {
        LenientWordnetParser(Analyzer analyzer) {
            super(true, expand, analyzer);
        }

        @Override
        public CharsRef analyze(String text, CharsRefBuilder reuse) throws IOException {
            try {
                return super.analyze(text, reuse);
            } catch (IllegalArgumentException e) {
                if (lenient) {
                    return new CharsRef("");
                }
                throw e;
            }
        }

        @Override
        public void add(CharsRef input, CharsRef output, boolean includeOrig) {
            if (lenient == false || (input.length > 0 && output.length > 0)) {
                super.add(input, output, includeOrig);
            }
        }
    }
}
