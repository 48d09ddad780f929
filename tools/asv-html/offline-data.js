/* asv's pages fetch their data (info.json, index.json, graphs/...) with
   jQuery's $.ajax, that is XMLHttpRequest, which browsers refuse on file://
   pages ("Error fetching content"). offline.py writes each X.json again as
   X.json.js, a script that hands the same data to asvOfflineData(); on a
   file:// page, $.ajax for JSON loads that script instead. Served over HTTP
   (asv preview, any web server) nothing changes. Loaded right after jQuery. */
(function ($) {
    "use strict";
    if (window.location.protocol !== "file:") {
        return;
    }

    /* Called by each X.json.js while it runs: document.currentScript is then
       the <script> element that loadScript below made for it. */
    window.asvOfflineData = function (data) {
        var script = document.currentScript;
        script.asvData = data;
        script.asvLoaded = true;
    };

    function loadScript(url) {
        var dfd = $.Deferred();
        var script = document.createElement("script");
        script.src = url;
        script.onload = function () {
            script.remove();
            if (script.asvLoaded) {
                dfd.resolve(script.asvData, "success", null);
            } else {
                dfd.reject(null, "error", "no data in " + url);
            }
        };
        script.onerror = function () {
            script.remove();
            dfd.reject(null, "error", "cannot load " + url);
        };
        document.head.appendChild(script);
        return dfd.promise();
    }

    var ajax = $.ajax;
    $.ajax = function (url, options) {
        var settings = typeof url === "object" ? url : $.extend({}, options, {url: url});
        if (settings.dataType !== "json" || typeof settings.url !== "string") {
            return ajax.apply(this, arguments);
        }
        /* asv adds "?timestamp=..." to defeat caches; a file path has no query. */
        var promise = loadScript(settings.url.split("?")[0] + ".js");
        if (settings.success) {
            promise.done(settings.success);
        }
        if (settings.error) {
            promise.fail(settings.error);
        }
        return promise;
    };
})(jQuery);
