/*
 * "stemmer" token filter, English variants only: language (or name) = english | porter |
 * porter2 | light_english | kstem | minimal_english | possessive_english (default: porter).
 */
package org.portal.analysis;

import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.en.EnglishMinimalStemFilter;
import org.apache.lucene.analysis.en.EnglishPossessiveFilter;
import org.apache.lucene.analysis.en.KStemFilter;
import org.apache.lucene.analysis.en.PorterStemFilter;
import org.apache.lucene.analysis.snowball.SnowballFilter;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.index.analysis.AbstractTokenFilterFactory;
import org.tartarus.snowball.ext.EnglishStemmer;

import java.util.function.Function;

final class StemmerTokenFilterFactory extends AbstractTokenFilterFactory {

    private final Function<TokenStream, TokenStream> stemmer;

    StemmerTokenFilterFactory(String name, Settings settings) {
        super(name);
        String language = settings.get("language", settings.get("name", "porter"));
        this.stemmer = switch (language) {
            case "english", "porter" -> PorterStemFilter::new;
            case "porter2" -> ts -> new SnowballFilter(ts, new EnglishStemmer());
            case "light_english", "lightEnglish", "kstem" -> KStemFilter::new;
            case "minimal_english", "minimalEnglish" -> EnglishMinimalStemFilter::new;
            case "possessive_english", "possessiveEnglish" -> EnglishPossessiveFilter::new;
            default -> throw new IllegalArgumentException("stemmer language [" + language + "] is not supported by the "
                + "portal-analysis plugin; supported: english, porter, porter2, light_english, kstem, minimal_english, "
                + "possessive_english");
        };
    }

    @Override
    public TokenStream create(TokenStream tokenStream) {
        return stemmer.apply(tokenStream);
    }
}
